"""All SQL on cohorts and their members, and the identity lookups cohort import needs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, delete, func, literal, select, tuple_
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.db import bulk
from cohortbridge.db import dialect as d
from cohortbridge.db.bulk import BulkInsert
from cohortbridge.db.unit import Executor
from cohortbridge.engage.cohorts.models import cohort_members, cohorts
from cohortbridge.engage.partners.models import partners
from cohortbridge.engage.users.models import profiles

CHUNK = 900

# Adding returns the rows actually inserted, so a member added twice is not counted twice.
_ADD_MEMBERS = BulkInsert(
    cohort_members,
    ("cohort", "profile_id", "added_at"),
    conflict=("cohort", "profile_id"),
    returning=("profile_id",),
)


def _chunks(values: Sequence[Any], size: int = CHUNK) -> list[Sequence[Any]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


# The write path of the cohort import runs as a synchronous unit of work (db/unit.py).
def _set_lock_timeout(ex: Executor, timeout_s: float) -> None:
    if ex.dialect == "postgresql":
        # Waiting longer raises lock_not_available (55P03), which the endpoint answers with 423.
        ex.run(f"SET LOCAL lock_timeout = '{int(timeout_s * 1000)}ms'")


_UPSERT_COHORT = BulkInsert(
    cohorts,
    ("workspace_id", "partner", "cohort_id", "version", "created_at", "updated_at"),
    conflict=("workspace_id", "partner", "cohort_id"),
    # Takes the row lock (PostgreSQL) and gives this request a version of its own.
    updates=lambda _dialect: {
        "version": "cohorts.version + 1",
        "updated_at": "excluded.updated_at",
    },
    returning=("id", "version"),
)


def open_cohort(
    ex: Executor,
    workspace_id: str,
    partner: str,
    cohort_id: str,
    *,
    now: datetime,
    timeout_s: float,
) -> tuple[int, int]:
    """Create the cohort if needed, lock it and mark it updated, in one statement.

    Returns its id and the version this request writes (unique per request and cohort).
    """
    _set_lock_timeout(ex, timeout_s)
    rows = _UPSERT_COHORT.execute(ex, [(workspace_id, partner, cohort_id, 1, now, now)])
    return int(rows[0][0]), int(rows[0][1])


def set_name(ex: Executor, cohort_pk: int, name: str, created_at: datetime, now: datetime) -> None:
    # The first created_at a partner sends is kept; a rename only changes the name.
    bulk.run_sql(
        ex,
        "UPDATE cohorts SET name = {mark}, "
        "partner_created_at = coalesce(partner_created_at, {mark}), updated_at = {mark} "
        "WHERE id = {mark}",
        (name, bulk.write_time(ex.dialect, created_at), bulk.write_time(ex.dialect, now),
         cohort_pk),
    )  # fmt: skip


# Each kind of identifier, as the rows of profiles it matches: external ids of any profile,
# aliases, and device ids of profiles that are still anonymous (an identified profile never
# matches by device id, spec braze §1.7).
_MATCH = {
    "external_id": (
        "SELECT id AS pid FROM profiles WHERE workspace_id = {mark} AND external_id IN ({marks})"
    ),
    "device_id": (
        "SELECT p.id AS pid FROM profile_devices d JOIN profiles p ON p.id = d.profile_id "
        "WHERE d.workspace_id = {mark} AND p.external_id IS NULL AND d.device_id IN ({marks})"
    ),
    "user_alias": (
        "SELECT profile_id AS pid FROM profile_aliases WHERE workspace_id = {mark} "
        "AND (alias_label, alias_name) IN (VALUES {pairs})"
    ),
}
# DO UPDATE with an unchanged value, not DO NOTHING: RETURNING then answers for members that
# were already there too, which tells matched profiles from inserted ones in one statement.
_ADD = (
    "INSERT INTO cohort_members (cohort, profile_id, added_at, added_in) "
    "SELECT {mark}, m.pid, {mark}, {mark} FROM ({match}) AS m WHERE true "
    "ON CONFLICT (cohort, profile_id) DO UPDATE SET added_in = cohort_members.added_in "
    "RETURNING profile_id, added_in"
)


def _flatten(kind: str, values: Sequence[Any]) -> list[Any]:
    return [v for pair in values for v in pair] if kind == "user_alias" else list(values)


def _match_sql(kind: str, count: int) -> str:
    if kind != "user_alias":
        return _MATCH[kind]
    return _MATCH[kind].replace("{pairs}", ", ".join(["({mark}, {mark})"] * count))


def add_matching(
    ex: Executor,
    cohort_pk: int,
    workspace_id: str,
    kind: str,
    values: Sequence[Any],
    *,
    version: int,
    now: datetime,
) -> list[tuple[int, bool]]:
    """Make every profile the identifiers match a member, in one statement per chunk.

    Returns (profile id, inserted by this request) for each matched profile: rows inserted by
    this request carry its ``version``, which no earlier request had (see ``open_cohort``).
    """
    marker = bulk.write_time(ex.dialect, now)
    leading = (cohort_pk, marker, version, workspace_id)
    if kind != "user_alias":
        rows = bulk.fetch_in(ex, _ADD.replace("{match}", _MATCH[kind]), leading, values)
        return [(int(pid), int(added_in) == version) for pid, added_in in rows]
    out: list[tuple[int, bool]] = []
    for part in _chunks(values, 450):
        template = _ADD.replace("{match}", _match_sql(kind, len(part)))
        rows = bulk.fetch_sql(ex, template, (*leading, *_flatten(kind, part)), len(part))
        out.extend((int(pid), int(added_in) == version) for pid, added_in in rows)
    return out


def remove_matching(
    ex: Executor, cohort_pk: int, workspace_id: str, kind: str, values: Sequence[Any]
) -> tuple[list[int], list[int]]:
    """Remove the matched profiles: (profiles matched, those that were members)."""
    matched = sorted(set(_matched(ex, workspace_id, kind, values)))
    removed = bulk.fetch_in(
        ex,
        "DELETE FROM cohort_members WHERE cohort = {mark} AND profile_id IN ({marks}) "
        "RETURNING profile_id",
        (cohort_pk,),
        matched,
    )
    return matched, [int(row[0]) for row in removed]


def _matched(ex: Executor, workspace_id: str, kind: str, values: Sequence[Any]) -> list[int]:
    if kind != "user_alias":
        return [int(row[0]) for row in bulk.fetch_in(ex, _MATCH[kind], (workspace_id,), values)]
    matched: list[int] = []
    for part in _chunks(values, 450):
        params = (workspace_id, *_flatten(kind, part))
        rows = bulk.fetch_sql(ex, _match_sql(kind, len(part)), params, len(part))
        matched.extend(int(row[0]) for row in rows)
    return matched


async def list_cohorts(conn: AsyncConnection, workspace_id: str) -> list[RowMapping]:
    """Cohorts with their partner's name and their size, counted from the members."""
    size = (
        select(func.count())
        .select_from(cohort_members)
        .where(cohort_members.c.cohort == cohorts.c.id)
        .scalar_subquery()
    )
    query = (
        select(cohorts, partners.c.display_name, size.label("size"))
        .join(partners, partners.c.slug == cohorts.c.partner)
        .where(cohorts.c.workspace_id == workspace_id)
        .order_by(cohorts.c.partner, cohorts.c.created_at, cohorts.c.id)
    )
    return list((await conn.execute(query)).mappings())


async def member_external_ids(conn: AsyncConnection, cohort_pk: int) -> list[str | None]:
    query = (
        select(profiles.c.external_id)
        .join(cohort_members, cohort_members.c.profile_id == profiles.c.id)
        .where(cohort_members.c.cohort == cohort_pk)
        .order_by(profiles.c.id)
    )
    return list((await conn.execute(query)).scalars())


async def move_memberships(conn: AsyncConnection, source_id: int, target_id: int) -> None:
    """Give the target profile every membership of the source (kept where it already is)."""
    cm = cohort_members.c
    moved = select(cm.cohort, literal(target_id, BigInteger()), cm.added_at, cm.added_in).where(
        cm.profile_id == source_id
    )
    stmt = d.insert_for(conn.dialect.name, cohort_members).from_select(
        ["cohort", "profile_id", "added_at", "added_in"], moved
    )
    await conn.execute(stmt.on_conflict_do_nothing())
    await conn.execute(delete(cohort_members).where(cm.profile_id == source_id))


async def named(
    conn: AsyncConnection, workspace_id: str, keys: Sequence[tuple[str, str]]
) -> list[RowMapping]:
    """Partner, cohort id, name and partner display name of these cohorts (no counting)."""
    if not keys:
        return []
    c = cohorts.c
    query = (
        select(c.partner, c.cohort_id, c.name, partners.c.display_name)
        .join(partners, partners.c.slug == c.partner)
        .where(c.workspace_id == workspace_id, tuple_(c.partner, c.cohort_id).in_(list(keys)))
    )
    return list((await conn.execute(query)).mappings())
