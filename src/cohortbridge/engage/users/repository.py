"""All SQL on profiles, their identifiers and their event and purchase history."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import BigInteger, delete, literal, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.db import bulk
from cohortbridge.db import dialect as d
from cohortbridge.db.bulk import Bound, BulkInsert, BulkUpdate, Many, Updates
from cohortbridge.db.unit import Executor
from cohortbridge.engage.users.logic.identifiers import Alias
from cohortbridge.engage.users.models import (
    custom_events,
    profile_aliases,
    profile_devices,
    profile_event_days,
    profile_event_stats,
    profile_purchase_days,
    profile_purchase_stats,
    profiles,
    purchases,
)

STATE_COLUMNS = (
    "email", "phone", "first_name", "last_name", "gender", "dob", "country", "home_city",
    "language", "time_zone", "email_subscribe", "push_subscribe",
)  # fmt: skip
# SQLite accepts at most 32,766 bound parameters; stay far below for IN lists.
CHUNK = 900


def _chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def dialect_of(conn: AsyncConnection) -> str:
    return conn.dialect.name


# --- the /users/track write path: synchronous units of work (db/unit.py) ---


def ids_by_external_id(
    ex: Executor, workspace_id: str, external_ids: Sequence[str]
) -> dict[str, int]:
    rows = bulk.fetch_in(
        ex,
        "SELECT external_id, id FROM profiles WHERE workspace_id = {mark} "
        "AND external_id IN ({marks})",
        (workspace_id,),
        list(external_ids),
    )
    return {row[0]: row[1] for row in rows}


def ids_by_braze_id(ex: Executor, workspace_id: str, braze_ids: Sequence[str]) -> dict[str, int]:
    rows = bulk.fetch_in(
        ex,
        "SELECT braze_id, id FROM profiles WHERE workspace_id = {mark} AND braze_id IN ({marks})",
        (workspace_id,),
        list(braze_ids),
    )
    return {row[0]: row[1] for row in rows}


_BY_ALIAS = (
    "SELECT alias_label, alias_name, profile_id FROM profile_aliases "
    "WHERE workspace_id = {mark} AND (alias_label, alias_name) IN (VALUES {pairs})"
)


def ids_by_alias(ex: Executor, workspace_id: str, aliases: Sequence[Alias]) -> dict[Alias, int]:
    found: dict[Alias, int] = {}
    for chunk in _chunks(aliases, CHUNK // 2):
        template = _BY_ALIAS.replace("{pairs}", ", ".join(["({mark}, {mark})"] * len(chunk)))
        params = [workspace_id, *(v for pair in chunk for v in pair)]
        rows = bulk.fetch_sql(ex, template, params)
        found.update({(row[0], row[1]): row[2] for row in rows})
    return found


def candidates_by_contact(
    ex: Executor, workspace_id: str, kind: str, values: Sequence[str]
) -> list[dict[str, Any]]:
    """Profiles holding any of these emails (or phones), for secondary-id lookups.

    ``updated_at`` is as the driver returns it (text on SQLite): it is only compared.
    """
    if kind not in ("email", "phone"):
        raise ValueError(kind)
    rows = bulk.fetch_in(
        ex,
        f"SELECT id, {kind}, external_id, updated_at FROM profiles "
        f"WHERE workspace_id = {{mark}} AND {kind} IN ({{marks}})",
        (workspace_id,),
        list(values),
    )
    names = ("id", "value", "external_id", "updated_at")
    return [dict(zip(names, row, strict=True)) for row in rows]


def ids_by_device(ex: Executor, workspace_id: str, device_ids: Sequence[str]) -> dict[str, int]:
    rows = bulk.fetch_in(
        ex,
        "SELECT device_id, profile_id FROM profile_devices WHERE workspace_id = {mark} "
        "AND device_id IN ({marks})",
        (workspace_id,),
        list(device_ids),
    )
    return {row[0]: row[1] for row in rows}


# A profile's writable state as ``state_rows`` returns it (``_STATE_NAMES``).
_STATE_LIST = "id, standard, custom_attributes, " + ", ".join(STATE_COLUMNS)
_STATE_SELECT = f"SELECT {_STATE_LIST} FROM profiles WHERE id IN ({{marks}})"


def _document(value: Any) -> dict[str, Any]:
    """A JSON column as PostgreSQL's driver (objects) or SQLite's (text) hands it back."""
    if value is None:
        return {}
    loaded = orjson.loads(value) if isinstance(value, str | bytes) else value
    return dict(loaded)


def load_states(ex: Executor, ids: Sequence[int], *, lock: bool) -> dict[int, dict[str, Any]]:
    """Writable state of profiles; ``lock`` takes row locks (PostgreSQL) in id order."""
    return decode_states(state_rows(ex, ids, lock=lock))


def state_rows(ex: Executor, ids: Sequence[int], *, lock: bool) -> list[Any]:
    """``load_states`` as the driver returns the rows: comparable as they are (a request
    that computed its writes from them checks that they did not change)."""
    if not ids:
        return []
    template = _STATE_SELECT + " ORDER BY id"
    if lock and ex.dialect == "postgresql":
        template += " FOR UPDATE"
    return bulk.fetch_in(ex, template, (), sorted(ids))


_STATE_NAMES = ("id", "standard", "custom_attributes", *STATE_COLUMNS)
_STATE_BY_EXTERNAL_ID = (
    f"SELECT external_id, {_STATE_LIST} FROM profiles "
    "WHERE workspace_id = {mark} AND external_id IN ({marks}) ORDER BY id"
)


def states_by_external_id(
    ex: Executor, workspace_id: str, external_ids: Sequence[str], *, lock: bool
) -> list[Any]:
    """``ids_by_external_id`` and ``state_rows`` of those profiles in one query: rows of the
    external id followed by a ``state_rows`` row."""
    if not external_ids:
        return []
    template = _STATE_BY_EXTERNAL_ID
    if lock and ex.dialect == "postgresql":
        template += " FOR UPDATE"
    return bulk.fetch_in(ex, template, (workspace_id,), sorted(external_ids))


def decode_states(rows: Sequence[Any]) -> dict[int, dict[str, Any]]:
    """``{id: state}`` of ``state_rows``; ``standard_json`` and ``custom_json`` keep the
    documents' stored text where the driver gave text (SQLite), else None."""
    out: dict[int, dict[str, Any]] = {}
    for row in rows:
        record = dict(zip(_STATE_NAMES, row, strict=True))
        standard, custom = record["standard"], record["custom_attributes"]
        record["standard_json"] = _text(standard)
        record["custom_json"] = _text(custom)
        record["standard"] = _document(standard)
        record["custom_attributes"] = _document(custom)
        out[int(record["id"])] = record
    return out


def _text(value: Any) -> bytes | None:
    if isinstance(value, str):
        return value.encode()
    return value if isinstance(value, bytes) else None


PROFILE_COLUMNS = (
    "workspace_id", "braze_id", "external_id", *STATE_COLUMNS, "standard", "custom_attributes",
    "random_bucket", "total_revenue", "created_at", "updated_at",
)  # fmt: skip
_INSERT_PROFILES = BulkInsert(
    profiles, PROFILE_COLUMNS, conflict=("workspace_id", "external_id"),
    returning=("braze_id", "id"),
)  # fmt: skip


def insert_profiles(ex: Executor, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert new profiles; an external id another writer took meanwhile is skipped.

    Returns ``{braze_id: id}`` of the rows actually inserted.
    """
    return inserted_profiles(ex, bind_profiles(ex.dialect, rows))


def bind_profiles(dialect: str, rows: list[dict[str, Any]]) -> Bound:
    return _INSERT_PROFILES.bind_dicts(dialect, rows)


def inserted_profiles(ex: Executor, bound: Bound) -> dict[str, int]:
    """Run ``bind_profiles``: ``{braze_id: id}`` of the rows actually inserted."""
    return {row[0]: row[1] for row in bound.execute(ex)}


STATE_WRITES = (*STATE_COLUMNS, "standard", "custom_attributes", "updated_at")


def update_states(ex: Executor, rows: list[dict[str, Any]]) -> None:
    """Write back profiles' writable state: rows carry ``pid`` and the state columns to set
    (any of ``STATE_WRITES``); one statement per set of columns."""
    for bound in bind_states(ex.dialect, rows):
        bound.execute(ex)


def bind_states(dialect: str, rows: list[dict[str, Any]]) -> list[Bound]:
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in sorted(rows, key=itemgetter("pid")):
        columns = tuple(name for name in STATE_WRITES if name in row)
        by_columns.setdefault(columns, []).append(row)
    bound = []
    for columns, group in by_columns.items():
        if columns:
            pick = itemgetter(*columns, "pid")
            bound.append(_state_update(columns).bind(dialect, [pick(row) for row in group]))
    return bound


@lru_cache(maxsize=256)
def _state_update(columns: tuple[str, ...]) -> BulkUpdate:
    return BulkUpdate(profiles, columns, key="id")


_INSERT_ALIASES = BulkInsert(
    profile_aliases, ("workspace_id", "alias_label", "alias_name", "profile_id"),
    conflict=("workspace_id", "alias_label", "alias_name"), returning=("profile_id",),
)  # fmt: skip


def insert_aliases(ex: Executor, rows: list[dict[str, Any]]) -> int:
    """Insert aliases whose (label, name) is free; returns how many were inserted."""
    return len(bind_aliases(ex.dialect, rows).execute(ex))


def bind_aliases(dialect: str, rows: list[dict[str, Any]]) -> Bound:
    """``insert_aliases`` to run later: it returns one row per alias inserted."""
    return _INSERT_ALIASES.bind_dicts(dialect, rows, "profile_id")


def _stats_updates(table: str, *, revenue: bool) -> Updates:
    def updates(dialect: str) -> dict[str, str]:
        sets = {
            "count": f"{table}.count + excluded.count",
            "first_at": bulk.least(dialect, f"{table}.first_at", "excluded.first_at"),
            "last_at": bulk.greatest(dialect, f"{table}.last_at", "excluded.last_at"),
        }
        if revenue:
            sets["revenue"] = f"{table}.revenue + excluded.revenue"
        return sets

    return updates


def _day_updates(table: str, *, revenue: bool) -> Updates:
    def updates(_dialect: str) -> dict[str, str]:
        sets = {"count": f"{table}.count + excluded.count"}
        if revenue:
            sets["revenue"] = f"{table}.revenue + excluded.revenue"
        return sets

    return updates


_INSERT_EVENTS = BulkInsert(
    custom_events, ("workspace_id", "profile_id", "name", "time", "app_id", "properties")
)
_INSERT_PURCHASES = BulkInsert(
    purchases,
    ("workspace_id", "profile_id", "product_id", "currency", "price", "quantity", "time",
     "app_id", "properties"),
)  # fmt: skip
_EVENT_STATS = BulkInsert(
    profile_event_stats, ("profile_id", "name", "count", "first_at", "last_at"),
    conflict=("profile_id", "name"), updates=_stats_updates("profile_event_stats", revenue=False),
)  # fmt: skip
_EVENT_DAYS = BulkInsert(
    profile_event_days, ("profile_id", "name", "day", "count"),
    conflict=("profile_id", "name", "day"),
    updates=_day_updates("profile_event_days", revenue=False),
)  # fmt: skip
_PURCHASE_STATS = BulkInsert(
    profile_purchase_stats, ("profile_id", "product_id", "count", "revenue", "first_at", "last_at"),
    conflict=("profile_id", "product_id"),
    updates=_stats_updates("profile_purchase_stats", revenue=True),
)  # fmt: skip
_PURCHASE_DAYS = BulkInsert(
    profile_purchase_days, ("profile_id", "product_id", "day", "count", "revenue"),
    conflict=("profile_id", "product_id", "day"),
    updates=_day_updates("profile_purchase_days", revenue=True),
)  # fmt: skip


# The writes of a request's history, bound ahead (``Bound``): rows of profiles the request
# creates carry stand-in ids in ``profile_id`` until then (``Bound.with_ids``).
def bind_events(dialect: str, rows: list[dict[str, Any]]) -> Bound:
    return _INSERT_EVENTS.bind_dicts(dialect, rows, "profile_id")


def bind_purchases(dialect: str, rows: list[dict[str, Any]]) -> Bound:
    return _INSERT_PURCHASES.bind_dicts(dialect, rows, "profile_id")


# Stats rows are aggregated per key by the caller (one statement may not touch a key twice on
# PostgreSQL) and sorted so that concurrent writers lock rows in the same order.
def bind_event_stats(dialect: str, rows: list[dict[str, Any]]) -> Bound:
    key = itemgetter("profile_id", "name")
    return _EVENT_STATS.bind_dicts(dialect, sorted(rows, key=key), "profile_id")


def bind_event_days(dialect: str, rows: list[dict[str, Any]]) -> Bound:
    key = itemgetter("profile_id", "name", "day")
    return _EVENT_DAYS.bind_dicts(dialect, sorted(rows, key=key), "profile_id")


def bind_purchase_stats(dialect: str, rows: list[dict[str, Any]]) -> Bound:
    key = itemgetter("profile_id", "product_id")
    return _PURCHASE_STATS.bind_dicts(dialect, sorted(rows, key=key), "profile_id")


def bind_purchase_days(dialect: str, rows: list[dict[str, Any]]) -> Bound:
    key = itemgetter("profile_id", "product_id", "day")
    return _PURCHASE_DAYS.bind_dicts(dialect, sorted(rows, key=key), "profile_id")


_ADD_REVENUE = Many(
    "UPDATE profiles SET total_revenue = profiles.total_revenue + {mark} WHERE id = {mark}"
)


def add_revenue(ex: Executor, amounts: dict[int, float]) -> None:
    bind_revenue(ex.dialect, amounts).execute(ex)


def bind_revenue(dialect: str, amounts: dict[int, float]) -> Bound:
    rows = [(amount, pid) for pid, amount in sorted(amounts.items())]
    return _ADD_REVENUE.bind(dialect, rows, id_column=1)


_UPSERT_DEVICES = BulkInsert(
    profile_devices,
    ("workspace_id", "device_id", "profile_id", "app_id", "push_token", "created_at",
     "last_seen_at"),
    conflict=("workspace_id", "device_id"),
    updates=lambda _dialect: {
        name: f"excluded.{name}" for name in ("profile_id", "app_id", "push_token", "last_seen_at")
    },
)  # fmt: skip


def upsert_devices(ex: Executor, rows: list[dict[str, Any]]) -> None:
    """Attach devices (with their push tokens) to profiles; a known device moves to its new
    profile, as a token re-registered under another user does."""
    bind_devices(ex.dialect, rows).execute(ex)


def bind_devices(dialect: str, rows: list[dict[str, Any]]) -> Bound:
    rows = sorted(rows, key=lambda r: str(r["device_id"]))
    return _UPSERT_DEVICES.bind_dicts(dialect, rows, "profile_id")


# --- other operations (not hot paths: SQLAlchemy Core) ---


async def delete_profiles(conn: AsyncConnection, ids: Sequence[int]) -> int:
    deleted = 0
    for chunk in _chunks(sorted(ids)):
        result = await conn.execute(delete(profiles).where(profiles.c.id.in_(chunk)))
        deleted += result.rowcount
    return deleted


# --- exports: raw rows of a page of profiles, one unit of work (they read thousands) ------


# A whole export page per statement: fewer driver round trips (SQLite allows 32,766 values).
EXPORT_CHUNK = 5_000


def _rows_by_id(
    ex: Executor, template: str, ids: Sequence[int], names: tuple[str, ...]
) -> list[dict[str, Any]]:
    rows = bulk.fetch_in(ex, template, (), ids, chunk=EXPORT_CHUNK)
    return [dict(zip(names, row, strict=True)) for row in rows]


def export_profiles(
    ex: Executor, ids: Sequence[int], columns: set[str]
) -> dict[int, dict[str, Any]]:
    """Profiles by id with ``columns`` (and ``id``): JSON columns decoded, ``created_at`` a
    datetime; the rest as the driver hands them back."""
    names = tuple(sorted(columns | {"id"}))
    template = f"SELECT {', '.join(names)} FROM profiles WHERE id IN ({{marks}})"
    out: dict[int, dict[str, Any]] = {}
    for record in _rows_by_id(ex, template, sorted(ids), names):
        for name in ("standard", "custom_attributes"):
            if name in record:
                record[name] = _document(record[name])
        if "created_at" in record:
            record["created_at"] = bulk.read_time(record["created_at"])
        out[int(record["id"])] = record
    return out


_ALIASES_OF = (
    "SELECT profile_id, alias_label, alias_name FROM profile_aliases "
    "WHERE profile_id IN ({marks}) ORDER BY profile_id, alias_label"
)
# Times stay as stored (SQLite's text, PostgreSQL's datetime): logic.times formats either.
# In key order: read along the index, no sort; each profile's entries by name.
_EVENT_STATS_OF = (
    "SELECT profile_id, name, count, first_at, last_at FROM profile_event_stats "
    "WHERE profile_id IN ({marks}) ORDER BY profile_id, name"
)
_PURCHASE_STATS_OF = (
    "SELECT profile_id, product_id, count, first_at, last_at FROM profile_purchase_stats "
    "WHERE profile_id IN ({marks}) ORDER BY profile_id, product_id"
)
_DEVICES_OF = (
    "SELECT profile_id, device_id, app_id, push_token FROM profile_devices "
    "WHERE profile_id IN ({marks}) ORDER BY profile_id, created_at, device_id"
)


def aliases_of(ex: Executor, ids: Sequence[int]) -> list[dict[str, Any]]:
    return _rows_by_id(ex, _ALIASES_OF, ids, ("profile_id", "alias_label", "alias_name"))


def event_stats_of(ex: Executor, ids: Sequence[int]) -> list[Any]:
    """``(profile_id, name, count, first_at, last_at)`` rows."""
    return bulk.fetch_in(ex, _EVENT_STATS_OF, (), ids, chunk=EXPORT_CHUNK)


def purchase_stats_of(ex: Executor, ids: Sequence[int]) -> list[Any]:
    """``(profile_id, product_id, count, first_at, last_at)`` rows."""
    return bulk.fetch_in(ex, _PURCHASE_STATS_OF, (), ids, chunk=EXPORT_CHUNK)


def devices_of(ex: Executor, ids: Sequence[int]) -> list[dict[str, Any]]:
    names = ("profile_id", "device_id", "app_id", "push_token")
    return _rows_by_id(ex, _DEVICES_OF, ids, names)


# --- export lines: the database writes each user's JSON text (segment exports) -------------


def export_lines(
    ex: Executor, ids: Sequence[int], fields: tuple[str, ...], since: Any
) -> list[str]:
    """One JSON line per profile of ``ids`` that exists, in id order, with ``fields`` (in that
    order; logic.export.line_fields) as export_object builds them, except that custom attribute
    times stay marked (logic.export.unmark_times). Histories list the entries last seen at or
    after ``since`` (None: all). On SQLite and PostgreSQL alike; 300,000 users with four
    fields: ~3.3 s of SQLite in one thread, where reading their rows and building the objects in
    Python took ~10 s."""
    template, repeats = _line_template(ex.dialect, fields, since is not None)
    return [
        row[0]
        for row in bulk.fetch_in(ex, template, (since,) * repeats, sorted(ids), chunk=EXPORT_CHUNK)
    ]


def sqlite_line_statement(
    ids: Sequence[int], fields: tuple[str, ...], since: Any
) -> tuple[str, tuple[Any, ...]]:
    """export_lines' statement and parameters for at most EXPORT_CHUNK ids on SQLite, to run
    elsewhere (db.processes)."""
    if len(ids) > EXPORT_CHUNK:
        raise ValueError(f"at most {EXPORT_CHUNK} ids per statement")
    template, repeats = _line_template("sqlite", fields, since is not None)
    return bulk.render(template, "sqlite", len(ids)), ((since,) * repeats + tuple(sorted(ids)))


_MARK, _IN = "\x00mark\x00", "\x00in\x00"


@lru_cache(maxsize=64)
def _line_template(dialect: str, fields: tuple[str, ...], since: bool) -> tuple[str, int]:
    """The statement (a bulk.fetch_in template) and how many times it takes ``since``."""
    sql = _SqliteLine() if dialect == "sqlite" else _PostgresLine()
    pieces = [sql.piece(name, since) for name in fields]
    text = sql.line(pieces) + " FROM profiles p WHERE p.id " + _IN + " ORDER BY p.id"
    # bulk.fetch_in formats the template: the JSON text's braces are doubled first.
    template = text.replace("{", "{{").replace("}", "}}")
    template = template.replace(_MARK, "{mark}").replace(_IN, "IN ({marks})")
    return template, text.count(_MARK)


_HISTORY_TABLES = {
    "custom_events": ("profile_event_stats", "name"),
    "purchases": ("profile_purchase_stats", "product_id"),
}


class _Line:
    """The SQL text of an export line, field by field; the dialects fill in the parts."""

    # A JSON string of a text column.
    QUOTE: str

    def piece(self, name: str, since: bool) -> str:
        if name == "created_at":
            return self.created_at()
        if name == "custom_attributes":
            return self.custom_attributes()
        if name == "user_aliases":
            name_, label = self.QUOTE.format("a.alias_name"), self.QUOTE.format("a.alias_label")
            entry = f"""'{{"alias_name":' || {name_} || ',"alias_label":' || {label} || '}}'"""
            return self.array(name, entry, "a.alias_label", "profile_aliases a")
        if name in _HISTORY_TABLES:
            table, key = _HISTORY_TABLES[name]
            entry = self.history_entry(f"h.{key}")
            recent = f" AND h.last_at >= {_MARK}" if since else ""
            return self.array(name, entry, f"h.{key}", f"{table} h", where=recent)
        return self.plain(name)

    def created_at(self) -> str:
        raise NotImplementedError

    def custom_attributes(self) -> str:
        raise NotImplementedError

    def history_entry(self, name: str) -> str:
        """``{"name": …, "first": …, "last": …, "count": …}`` of the history row ``h``."""
        first, last = self.history_time("h.first_at"), self.history_time("h.last_at")
        return (
            f"""'{{"name":' || {self.QUOTE.format(name)} || ',"first":"' || {first} """
            f"""|| '","last":"' || {last} || '","count":' || h.count || '}}'"""
        )

    def history_time(self, column: str) -> str:
        raise NotImplementedError

    def array(self, name: str, entry: str, order: str, source: str, *, where: str = "") -> str:
        """The entries of ``source`` (aliased by its first letter) for the profile, by
        ``order``."""
        raise NotImplementedError

    def plain(self, name: str) -> str:
        raise NotImplementedError

    def line(self, pieces: list[str]) -> str:
        raise NotImplementedError


class _SqliteLine(_Line):
    """Pieces that end in a comma, or are empty: ``rtrim`` drops the last comma."""

    QUOTE = "json_quote({})"

    @staticmethod
    def time(column: str, sep: str, tail: str) -> str:
        # Stored as ``YYYY-MM-DD HH:MM:SS.ffffff``: cut, not parsed (any other text: parsed).
        cut = f"substr({column}, 1, 10) || '{sep}' || substr({column}, 12, 12)"
        parsed = f"strftime('%Y-%m-%d{sep}%H:%M:%f', {column})"
        return f"CASE WHEN length({column}) = 26 THEN {cut} ELSE {parsed} END || '{tail}'"

    def created_at(self) -> str:
        return f"""'"created_at":"' || {self.time("p.created_at", " ", " UTC")} || '",'"""

    def custom_attributes(self) -> str:
        spliced = """'"custom_attributes":' || p.custom_attributes || ','"""
        return f"CASE WHEN p.custom_attributes <> '{{}}' THEN {spliced} ELSE '' END"

    def history_time(self, column: str) -> str:
        # One substr and one replace: fewer string copies than pasting the parts together.
        cut = f"replace(substr({column}, 1, 23), ' ', 'T')"
        parsed = f"strftime('%Y-%m-%dT%H:%M:%f', {column})"
        return f"CASE WHEN length({column}) = 26 THEN {cut} ELSE {parsed} END || 'Z'"

    def history_entry(self, name: str) -> str:
        # json_object writes the same compact text as the pieces pasted together, faster.
        first, last = self.history_time("h.first_at"), self.history_time("h.last_at")
        return f"json_object('name', {name}, 'first', {first}, 'last', {last}, 'count', h.count)"

    def array(self, name: str, entry: str, order: str, source: str, *, where: str = "") -> str:
        # SQLite 3.40 has no ORDER BY inside an aggregate: the rows come in the primary key's
        # order (profile_id, then ``order``), the Python export's order too. group_concat of
        # no rows is NULL: no entries, no field.
        rows = f"FROM {source} WHERE {source[-1]}.profile_id = p.id{where}"
        return (
            f"""coalesce((SELECT '"{name}":[' || group_concat({entry}, ',') || '],' {rows}), '')"""
        )

    def plain(self, name: str) -> str:
        # json_quote(NULL) is the text null: absent values are tested first.
        value = f"""'"{name}":' || json_quote(p.{name}) || ','"""
        return f"CASE WHEN p.{name} IS NULL THEN '' ELSE {value} END"

    def line(self, pieces: list[str]) -> str:
        return "SELECT rtrim('{' || " + " || ".join(pieces or ["''"]) + ", ',') || '}'"


class _PostgresLine(_Line):
    """Pieces that are NULL when absent: ``concat_ws`` skips them."""

    QUOTE = "to_json({})::text"

    @staticmethod
    def time(column: str, form: str) -> str:
        return f"to_char({column} AT TIME ZONE 'UTC', '{form}')"

    def created_at(self) -> str:
        made = self.time("p.created_at", "YYYY-MM-DD HH24:MI:SS.MS")
        return f"""'"created_at":"' || {made} || ' UTC"'"""

    def custom_attributes(self) -> str:
        spliced = """'"custom_attributes":' || p.custom_attributes::text"""
        return f"CASE WHEN p.custom_attributes <> '{{}}'::jsonb THEN {spliced} END"

    def history_time(self, column: str) -> str:
        return self.time(column, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')

    def array(self, name: str, entry: str, order: str, source: str, *, where: str = "") -> str:
        rows = f"FROM {source} WHERE {source[-1]}.profile_id = p.id{where}"
        joined = f"""'"{name}":[' || string_agg({entry}, ',' ORDER BY {order}) || ']'"""
        return f"(SELECT {joined} {rows})"

    def plain(self, name: str) -> str:
        return f"""'"{name}":' || to_json(p.{name})::text"""

    def line(self, pieces: list[str]) -> str:
        return "SELECT '{' || concat_ws(',', " + ", ".join(pieces or ["NULL"]) + ") || '}'"


# --- identity operations: identify, merge, alias updates (not hot paths: SQLAlchemy Core) ---


async def set_external_id(
    conn: AsyncConnection, profile_id: int, external_id: str, now: Any
) -> bool:
    """Identify a profile; False when another profile took that external id meanwhile."""
    stmt = (
        update(profiles)
        .where(profiles.c.id == profile_id, profiles.c.external_id.is_(None))
        .values(external_id=external_id, updated_at=now)
    )
    try:
        async with conn.begin_nested():
            result = await conn.execute(stmt)
    except IntegrityError:
        return False
    return bool(result.rowcount)


async def move_aliases(conn: AsyncConnection, source_id: int, target_id: int) -> None:
    """Give the target the source's aliases whose label it does not have yet (spec §4)."""
    pa = profile_aliases.c
    taken = select(pa.alias_label).where(pa.profile_id == target_id).scalar_subquery()
    await conn.execute(
        update(profile_aliases)
        .where(pa.profile_id == source_id, pa.alias_label.not_in(taken))
        .values(profile_id=target_id)
    )


async def move_rows(conn: AsyncConnection, source_id: int, target_id: int) -> None:
    """Devices and raw occurrences follow the surviving profile."""
    for table in (profile_devices, custom_events, purchases):
        await conn.execute(
            update(table).where(table.c.profile_id == source_id).values(profile_id=target_id)
        )


async def fold_histories(conn: AsyncConnection, source_id: int, target_id: int) -> None:
    """Add the source's event and purchase histories into the target's (sums, min/max times)."""
    dialect = dialect_of(conn)
    for table, keys, adds, times in (
        (profile_event_stats, ("name",), ("count",), True),
        (profile_event_days, ("name", "day"), ("count",), False),
        (profile_purchase_stats, ("product_id",), ("count", "revenue"), True),
        (profile_purchase_days, ("product_id", "day"), ("count", "revenue"), False),
    ):
        others = [c.name for c in table.c if c.name != "profile_id"]
        moved = select(literal(target_id, BigInteger()), *[table.c[n] for n in others]).where(
            table.c.profile_id == source_id
        )
        stmt = d.insert_for(dialect, table).from_select(["profile_id", *others], moved)
        sets: dict[str, Any] = {n: table.c[n] + stmt.excluded[n] for n in adds}
        if times:
            sets["first_at"] = d.least(dialect, table.c.first_at, stmt.excluded.first_at)
            sets["last_at"] = d.greatest(dialect, table.c.last_at, stmt.excluded.last_at)
        await conn.execute(
            stmt.on_conflict_do_update(index_elements=["profile_id", *keys], set_=sets)
        )


async def revenue_of(conn: AsyncConnection, profile_id: int) -> float:
    query = select(profiles.c.total_revenue).where(profiles.c.id == profile_id)
    return float((await conn.execute(query)).scalar_one_or_none() or 0.0)


async def labels_of(conn: AsyncConnection, profile_id: int) -> set[str]:
    query = select(profile_aliases.c.alias_label).where(profile_aliases.c.profile_id == profile_id)
    return set((await conn.execute(query)).scalars())


async def external_id_of(conn: AsyncConnection, profile_id: int) -> str | None:
    query = select(profiles.c.external_id).where(profiles.c.id == profile_id)
    value: str | None = (await conn.execute(query)).scalar_one_or_none()
    return value


async def rename_alias(
    conn: AsyncConnection, workspace_id: str, label: str, old_name: str, new_name: str
) -> bool:
    pa = profile_aliases.c
    taken = await conn.execute(
        select(pa.profile_id).where(
            pa.workspace_id == workspace_id, pa.alias_label == label, pa.alias_name == new_name
        )
    )
    if taken.first() is not None:
        return False
    result = await conn.execute(
        update(profile_aliases)
        .where(pa.workspace_id == workspace_id, pa.alias_label == label, pa.alias_name == old_name)
        .values(alias_name=new_name)
    )
    return bool(result.rowcount)


async def device_profile(
    conn: AsyncConnection, workspace_id: str, device_id: str
) -> RowMapping | None:
    """The profile holding a device: its id and external id."""
    query = (
        select(profiles.c.id, profiles.c.external_id, profiles.c.braze_id)
        .join(profile_devices, profile_devices.c.profile_id == profiles.c.id)
        .where(profile_devices.c.workspace_id == workspace_id)
        .where(profile_devices.c.device_id == device_id)
    )
    return (await conn.execute(query)).mappings().first()


async def braze_id_of(conn: AsyncConnection, profile_id: int) -> str:
    query = select(profiles.c.braze_id).where(profiles.c.id == profile_id)
    value: str = (await conn.execute(query)).scalar_one()
    return value
