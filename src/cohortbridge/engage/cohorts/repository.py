"""All SQL on cohorts and their members, and the identity lookups cohort import needs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, delete, func, literal, select, text, tuple_, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.db import dialect as d
from cohortbridge.db.bulk import BulkInsert
from cohortbridge.engage.cohorts.models import cohort_members, cohorts
from cohortbridge.engage.partners.models import partners
from cohortbridge.engage.users.models import profile_aliases, profile_devices, profiles

CHUNK = 900

_ADD_MEMBERS = BulkInsert(
    cohort_members, ("cohort", "profile_id", "added_at"), conflict=("cohort", "profile_id")
)


def _chunks(values: Sequence[Any], size: int = CHUNK) -> list[Sequence[Any]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


async def ensure_cohort(
    conn: AsyncConnection, workspace_id: str, partner: str, cohort_id: str, now: datetime
) -> None:
    stmt = d.insert_ignore(conn.dialect.name, cohorts, ["workspace_id", "partner", "cohort_id"])
    await conn.execute(
        stmt,
        {"workspace_id": workspace_id, "partner": partner, "cohort_id": cohort_id, "size": 0,
         "created_at": now, "updated_at": now},
    )  # fmt: skip


async def lock_cohort(
    conn: AsyncConnection, workspace_id: str, partner: str, cohort_id: str, timeout_s: float
) -> RowMapping:
    """The cohort row, locked until the transaction ends (PostgreSQL; SQLite has one writer).

    Waiting past ``timeout_s`` raises PostgreSQL's lock_not_available (55P03).
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(text(f"SET LOCAL lock_timeout = '{int(timeout_s * 1000)}ms'"))
    query = select(cohorts).where(
        cohorts.c.workspace_id == workspace_id,
        cohorts.c.partner == partner,
        cohorts.c.cohort_id == cohort_id,
    )
    row = (await conn.execute(query.with_for_update())).mappings().first()
    assert row is not None, "ensure_cohort ran first"
    return row


async def set_name(
    conn: AsyncConnection, cohort_pk: int, name: str, created_at: datetime, now: datetime
) -> None:
    # The first created_at a partner sends is kept; a rename only changes the name.
    stmt = (
        update(cohorts)
        .where(cohorts.c.id == cohort_pk)
        .values(
            name=name,
            partner_created_at=func.coalesce(cohorts.c.partner_created_at, created_at),
            updated_at=now,
        )
    )
    await conn.execute(stmt)


async def ids_by_external_id(
    conn: AsyncConnection, workspace_id: str, external_ids: Sequence[str]
) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(sorted(set(external_ids))):
        query = select(profiles.c.external_id, profiles.c.id).where(
            profiles.c.workspace_id == workspace_id, profiles.c.external_id.in_(chunk)
        )
        found.update({row[0]: row[1] for row in await conn.execute(query)})
    return found


async def ids_by_alias(
    conn: AsyncConnection, workspace_id: str, aliases: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    pa = profile_aliases.c
    found: dict[tuple[str, str], int] = {}
    for chunk in _chunks(sorted(set(aliases)), CHUNK // 2):
        query = select(pa.alias_label, pa.alias_name, pa.profile_id).where(
            pa.workspace_id == workspace_id, tuple_(pa.alias_label, pa.alias_name).in_(chunk)
        )
        found.update({(row[0], row[1]): row[2] for row in await conn.execute(query)})
    return found


async def anonymous_ids_by_device(
    conn: AsyncConnection, workspace_id: str, device_ids: Sequence[str]
) -> dict[str, int]:
    """Device ids of profiles that are still anonymous: an identified profile never matches by
    device id (spec braze §1.7)."""
    pd = profile_devices.c
    found: dict[str, int] = {}
    for chunk in _chunks(sorted(set(device_ids))):
        query = (
            select(pd.device_id, pd.profile_id)
            .join(profiles, profiles.c.id == pd.profile_id)
            .where(
                pd.workspace_id == workspace_id,
                pd.device_id.in_(chunk),
                profiles.c.external_id.is_(None),
            )
        )
        found.update({row[0]: row[1] for row in await conn.execute(query)})
    return found


async def members_among(
    conn: AsyncConnection, cohort_pk: int, profile_ids: Sequence[int]
) -> set[int]:
    found: set[int] = set()
    cm = cohort_members.c
    for chunk in _chunks(sorted(profile_ids)):
        query = select(cm.profile_id).where(cm.cohort == cohort_pk, cm.profile_id.in_(chunk))
        found.update((await conn.execute(query)).scalars())
    return found


async def add_members(
    conn: AsyncConnection, cohort_pk: int, profile_ids: Sequence[int], now: datetime
) -> None:
    await _ADD_MEMBERS.execute(conn, [(cohort_pk, pid, now) for pid in profile_ids])


async def remove_members(conn: AsyncConnection, cohort_pk: int, profile_ids: Sequence[int]) -> None:
    cm = cohort_members.c
    for chunk in _chunks(list(profile_ids)):
        await conn.execute(
            delete(cohort_members).where(cm.cohort == cohort_pk, cm.profile_id.in_(chunk))
        )


async def add_to_size(conn: AsyncConnection, cohort_pk: int, delta: int, now: datetime) -> None:
    stmt = (
        update(cohorts)
        .where(cohorts.c.id == cohort_pk)
        .values(size=cohorts.c.size + delta, updated_at=now)
    )
    await conn.execute(stmt)


async def list_cohorts(conn: AsyncConnection, workspace_id: str) -> list[RowMapping]:
    query = (
        select(cohorts, partners.c.display_name)
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


async def cohorts_of(conn: AsyncConnection, profile_ids: Sequence[int]) -> list[int]:
    """The cohorts these profiles belong to (call before deleting or merging them)."""
    cm = cohort_members.c
    found: set[int] = set()
    for chunk in _chunks(sorted(profile_ids)):
        query = select(cm.cohort).where(cm.profile_id.in_(chunk)).distinct()
        found.update((await conn.execute(query)).scalars())
    return sorted(found)


async def move_memberships(conn: AsyncConnection, source_id: int, target_id: int) -> None:
    """Give the target profile every membership of the source (kept where it already is)."""
    cm = cohort_members.c
    moved = select(cm.cohort, literal(target_id, BigInteger()), cm.added_at).where(
        cm.profile_id == source_id
    )
    stmt = d.insert_for(conn.dialect.name, cohort_members).from_select(
        ["cohort", "profile_id", "added_at"], moved
    )
    await conn.execute(stmt.on_conflict_do_nothing())
    await conn.execute(delete(cohort_members).where(cm.profile_id == source_id))


async def recount(conn: AsyncConnection, cohort_pks: Sequence[int]) -> None:
    """Re-derive cohort sizes from their members (after deletes and merges)."""
    if not cohort_pks:
        return
    cm = cohort_members.c
    counted = (
        select(func.count()).select_from(cohort_members).where(cm.cohort == cohorts.c.id)
    ).scalar_subquery()
    for chunk in _chunks(sorted(cohort_pks)):
        await conn.execute(update(cohorts).where(cohorts.c.id.in_(chunk)).values(size=counted))
