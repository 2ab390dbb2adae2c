"""Finding the profiles that identifiers address, in a few set-based queries."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.db.unit import Executor, call
from cohortbridge.engage.users import repository as repo
from cohortbridge.engage.users.logic.identifiers import Alias, Ident

Key = tuple[str, Any]


def pick_by_contact(candidates: list[dict[str, Any]]) -> int | None:
    """Of several profiles sharing an email (or phone): the most recently updated, preferring
    one with an external id (spec braze §3.3)."""
    if not candidates:
        return None
    best = max(candidates, key=lambda c: (c["external_id"] is not None, c["updated_at"], c["id"]))
    return int(best["id"])


async def existing_ids(
    conn: AsyncConnection, workspace_id: str, idents: Iterable[Ident]
) -> dict[Key, int]:
    """``{ident.key(): profile id}`` for the identifiers that exist."""
    return await call(conn, find_ids, workspace_id, list(idents))


def find_ids(ex: Executor, workspace_id: str, idents: Iterable[Ident]) -> dict[Key, int]:
    """``existing_ids`` inside a unit of work (db/unit.py)."""
    by_kind: dict[str, set[Any]] = defaultdict(set)
    for ident in idents:
        by_kind[ident.kind].add(ident.value)
    found: dict[Key, int] = {}
    if by_kind["external_id"]:
        ids = repo.ids_by_external_id(ex, workspace_id, sorted(by_kind["external_id"]))
        found.update({("external_id", k): v for k, v in ids.items()})
    if by_kind["braze_id"]:
        ids = repo.ids_by_braze_id(ex, workspace_id, sorted(by_kind["braze_id"]))
        found.update({("braze_id", k): v for k, v in ids.items()})
    if by_kind["user_alias"]:
        aliases: list[Alias] = sorted(by_kind["user_alias"])
        by_alias = repo.ids_by_alias(ex, workspace_id, aliases)
        found.update({("user_alias", k): v for k, v in by_alias.items()})
    if by_kind["device_id"]:
        ids = repo.ids_by_device(ex, workspace_id, sorted(by_kind["device_id"]))
        found.update({("device_id", k): v for k, v in ids.items()})
    for kind in ("email", "phone"):
        if by_kind[kind]:
            rows = repo.candidates_by_contact(ex, workspace_id, kind, sorted(by_kind[kind]))
            grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for row in rows:
                grouped[row["value"]].append(row)
            for value, candidates in grouped.items():
                chosen = pick_by_contact(candidates)
                if chosen is not None:
                    found[(kind, value)] = chosen
    return found
