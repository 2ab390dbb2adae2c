"""POST /users/export/ids (spec braze §3.11)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.db import bulk
from cohortbridge.db.processes import ReadProcesses
from cohortbridge.db.unit import Executor, call
from cohortbridge.engage.errors import BrazeError
from cohortbridge.engage.users import repository as repo
from cohortbridge.engage.users.logic.export import (
    KNOWN_FIELDS,
    columns_for,
    export_object,
    history,
    line_fields,
    ndjson,
    unmark_times,
)
from cohortbridge.engage.users.logic.identifiers import Ident, InvalidObject, parse_alias
from cohortbridge.engage.users.service.resolve import existing_ids

MAX_IDS = 50


def _bad(message: str) -> BrazeError:
    return BrazeError(400, message)


def _fields(payload: dict[str, Any]) -> frozenset[str] | None:
    fields = payload.get("fields_to_export")
    if fields is None:
        return None
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise _bad("'fields_to_export' must be an array of strings")
    unknown = sorted(set(fields) - KNOWN_FIELDS)
    if unknown:
        raise _bad(f"Invalid fields in 'fields_to_export': {', '.join(unknown)}")
    return frozenset(fields)


def _idents(payload: dict[str, Any]) -> tuple[list[Ident], str | None]:
    """The identifiers asked for, and a device id (looked up separately)."""
    external_ids = payload.get("external_ids") or []
    aliases = payload.get("user_aliases") or []
    if not isinstance(external_ids, list) or not all(isinstance(x, str) for x in external_ids):
        raise _bad("'external_ids' must be an array of strings")
    if not isinstance(aliases, list):
        raise _bad("'user_aliases' must be an array of user alias objects")
    if len(external_ids) > MAX_IDS or len(aliases) > MAX_IDS:
        raise _bad(f"a single request may not contain more than {MAX_IDS} identifiers")
    idents = [Ident("external_id", x) for x in external_ids]
    try:
        idents += [Ident("user_alias", parse_alias(a)) for a in aliases]
    except InvalidObject as error:
        raise _bad(str(error)) from error
    for key, kind in (("braze_id", "braze_id"), ("email_address", "email"), ("phone", "phone")):
        value = payload.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise _bad(f"'{key}' must be a string")
            idents.append(Ident(kind, value))  # type: ignore[arg-type]
    device_id = payload.get("device_id")
    if device_id is not None and not isinstance(device_id, str):
        raise _bad("'device_id' must be a string")
    return idents, device_id


async def export_ids(conn: AsyncConnection, workspace_id: str, payload: Any) -> dict[str, Any]:
    fields = _fields(payload)
    idents, device_id = _idents(payload)
    if not idents and device_id is None:
        raise _bad("at least one identifier must be provided")
    if device_id is not None:
        idents.append(Ident("device_id", device_id))
    found = await existing_ids(conn, workspace_id, idents)
    ids = list(dict.fromkeys(found[i.key()] for i in idents if i.key() in found))
    body: dict[str, Any] = {"message": "success", "users": await export_users(conn, ids, fields)}
    missing = [i.value for i in idents if i.kind == "external_id" and i.key() not in found]
    if missing:
        body["invalid_user_ids"] = missing
    return body


async def export_users(
    conn: AsyncConnection,
    ids: Sequence[int],
    fields: frozenset[str] | None,
    *,
    history_since: datetime | None = None,
) -> list[dict[str, Any]]:
    """Export objects for profiles, in the order of ``ids``; a handful of queries in all.

    With ``history_since``, ``custom_events`` and ``purchases`` list only the entries seen since
    then (segment exports: the last 90 days), their ``first`` and ``count`` still all-time.
    """
    return await call(conn, _export_users, ids, fields, history_since)


def _export_users(
    ex: Executor, ids: Sequence[int], fields: frozenset[str] | None, history_since: datetime | None
) -> list[dict[str, Any]]:
    # One unit of raw reads: a segment export reads thousands of rows per page, and typed
    # result processing (times parsed to be formatted again, JSON by the stdlib) cost more
    # than the reads.
    def wants(*names: str) -> bool:
        return fields is None or any(name in fields for name in names)

    rows = repo.export_profiles(ex, ids, columns_for(fields))
    # Only the tables the asked-for fields need are read.
    aliases: dict[int, list[dict[str, str]]] = defaultdict(list)
    for row in repo.aliases_of(ex, ids) if wants("user_aliases") else []:
        aliases[row["profile_id"]].append(
            {"alias_name": row["alias_name"], "alias_label": row["alias_label"]}
        )
    since = None if history_since is None else bulk.write_time(ex.dialect, history_since)
    events: dict[int, list[Any]] = defaultdict(list)
    for pid, *entry in repo.event_stats_of(ex, ids) if wants("custom_events") else []:
        if since is None or entry[3] >= since:
            events[pid].append(entry)
    purchases: dict[int, list[Any]] = defaultdict(list)
    for pid, *entry in repo.purchase_stats_of(ex, ids) if wants("purchases") else []:
        if since is None or entry[3] >= since:
            purchases[pid].append(entry)
    devices: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in repo.devices_of(ex, ids) if wants("devices", "push_tokens") else []:
        devices[row["profile_id"]].append(row)
    none: list[Any] = []
    return [
        export_object(
            rows[pid],
            aliases=aliases.get(pid, none),
            events=history(events[pid]) if pid in events else none,
            purchases=history(purchases[pid]) if pid in purchases else none,
            devices=devices.get(pid, none),
            fields=fields,
        )
        for pid in ids
        if pid in rows
    ]


async def export_ndjson(
    conn: AsyncConnection, ids: Sequence[int], fields: frozenset[str], *, history_since: datetime
) -> tuple[int, bytes]:
    """Newline-delimited export objects of the profiles of ``ids`` that exist, in id order, and
    how many: what ``export_users`` gives, as text (segment exports).

    For the fields the database can write (logic.export.LINE_FIELDS) it writes each line
    itself: building the objects in Python was most of an export's time."""
    order = line_fields(fields)
    if order is None:
        users = await export_users(conn, sorted(ids), fields, history_since=history_since)
        return len(users), ndjson(users)
    lines = await call(conn, _lines, ids, order, history_since)
    if not lines:
        return 0, b""
    return len(lines), unmark_times("\n".join(lines).encode() + b"\n")


def _lines(ex: Executor, ids: Sequence[int], fields: tuple[str, ...], since: datetime) -> list[str]:
    return repo.export_lines(ex, ids, fields, bulk.write_time(ex.dialect, since))


async def export_ndjson_in(
    processes: ReadProcesses, ids: Sequence[int], fields: frozenset[str], *,
    history_since: datetime,
) -> tuple[int, bytes]:  # fmt: skip
    """``export_ndjson`` read by SQLite reader processes, for fields the database writes
    (logic.export.line_fields)."""
    order = line_fields(fields)
    if order is None:
        raise ValueError(f"built in Python, not by the database: {sorted(fields)}")
    since = bulk.write_time("sqlite", history_since)
    ordered = sorted(ids)
    count, parts = 0, []
    for start in range(0, len(ordered), repo.EXPORT_CHUNK):
        chunk = ordered[start : start + repo.EXPORT_CHUNK]
        sql, params = repo.sqlite_line_statement(chunk, order, since)
        rows, text = await processes.text(sql, params)
        count += rows
        parts.append(text)
    return count, unmark_times(b"".join(parts))
