"""SQL on cohort membership: computing it set-based, and the changes each computation made."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, column, func, insert, select, table
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.cohorts.models import cohort_changes, cohort_members, cohorts
from cohortbridge.analytics.identity.models import users
from cohortbridge.db import bulk
from cohortbridge.db import dialect as d
from cohortbridge.db.unit import call

NEXT = "cb_cohort_next"
_next = table(NEXT, column("amplitude_id"))
CANDIDATES = "cb_cohort_candidates"
_candidates = table(CANDIDATES, column("amplitude_id"))
ENTERED, LEFT = 1, -1


async def _fill_next_from(conn: AsyncConnection, query: Select[Any]) -> None:
    await d.fresh_id_table(conn, NEXT)
    await conn.execute(insert(_next).from_select(["amplitude_id"], query))


async def _fill_next_with(conn: AsyncConnection, ids: Sequence[int]) -> None:
    await d.fresh_id_table(conn, NEXT)
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    if ids:
        await conn.exec_driver_sql(
            f"INSERT INTO {NEXT} (amplitude_id) VALUES ({mark})", [(i,) for i in sorted(set(ids))]
        )


_DIFF = {
    # Entered: in the new set, not yet a member.
    ENTERED: "INSERT INTO cohort_changes (cohort, version, amplitude_id, change) "
    "SELECT {m}, {m}, n.amplitude_id, 1 FROM " + NEXT + " n WHERE NOT EXISTS ("
    "SELECT 1 FROM cohort_members c WHERE c.cohort = {m} AND c.amplitude_id = n.amplitude_id)",
    # Left: a member no longer in the new set.
    LEFT: "INSERT INTO cohort_changes (cohort, version, amplitude_id, change) "
    "SELECT {m}, {m}, c.amplitude_id, -1 FROM cohort_members c WHERE c.cohort = {m} "
    "AND NOT EXISTS (SELECT 1 FROM " + NEXT + " n WHERE n.amplitude_id = c.amplitude_id)",
}
# Left, in a delta: a member among the candidates no longer in the new set.
_LEFT_AMONG = (
    "INSERT INTO cohort_changes (cohort, version, amplitude_id, change) "
    "SELECT {m}, {m}, c.amplitude_id, -1 FROM cohort_members c JOIN " + CANDIDATES + " w "
    "ON w.amplitude_id = c.amplitude_id WHERE c.cohort = {m} "
    "AND NOT EXISTS (SELECT 1 FROM " + NEXT + " n WHERE n.amplitude_id = c.amplitude_id)"
)
_APPLY = (
    "DELETE FROM cohort_members WHERE cohort = {m} AND amplitude_id IN (SELECT amplitude_id "
    "FROM cohort_changes WHERE cohort = {m} AND version = {m} AND change = -1)",
    "INSERT INTO cohort_members (cohort, amplitude_id, since_version) SELECT cohort, "
    "amplitude_id, version FROM cohort_changes WHERE cohort = {m} AND version = {m} "
    "AND change = 1",
)


def _sql(conn: AsyncConnection, template: str) -> str:
    return template.format(m="?" if conn.dialect.name == "sqlite" else "%s")


async def _diff_and_apply(
    conn: AsyncConnection, cohort: int, version: int, *, only_entered: bool = False,
    only_left: bool = False, among_candidates: bool = False,
) -> tuple[int, int]:  # fmt: skip
    """Record and apply the difference between ``cb_cohort_next`` and the members (only the
    members among ``cb_cohort_candidates`` can leave, in a delta)."""
    counts = {ENTERED: 0, LEFT: 0}
    diff = {**_DIFF, LEFT: _LEFT_AMONG} if among_candidates else _DIFF
    for change, template in diff.items():
        if (change == LEFT and only_entered) or (change == ENTERED and only_left):
            continue
        result = await conn.exec_driver_sql(_sql(conn, template), (cohort, version, cohort))
        counts[change] = max(result.rowcount or 0, 0)
    await conn.exec_driver_sql(_sql(conn, _APPLY[0]), (cohort, cohort, version))
    await conn.exec_driver_sql(_sql(conn, _APPLY[1]), (cohort, version))
    return counts[ENTERED], counts[LEFT]


async def compute(
    conn: AsyncConnection, cohort: int, version: int, query: Select[Any]
) -> tuple[int, int]:
    """Replace the members with the users ``query`` selects; (entered, left)."""
    await _fill_next_from(conn, query)
    return await _diff_and_apply(conn, cohort, version)


async def compute_delta(
    conn: AsyncConnection, cohort: int, version: int, condition: Any, candidates: Any
) -> tuple[int, int]:
    """Re-evaluate only ``candidates`` (a query of amplitude ids): those of them that meet
    ``condition`` (on ``users``, compiled per user) are members, the others are not; everyone
    else stays as they are."""
    await d.fresh_id_table(conn, CANDIDATES)
    await conn.execute(insert(_candidates).from_select(["amplitude_id"], candidates))
    # Each candidate, then its user by key and the user's own lookups: as a join, SQLite
    # evaluated the condition for every user of the project before joining (7.7 s at 1M).
    member = select(users.c.amplitude_id).where(
        users.c.amplitude_id == _candidates.c.amplitude_id, condition
    )
    query = select(_candidates.c.amplitude_id).where(member.exists())
    await _fill_next_from(conn, query)
    return await _diff_and_apply(conn, cohort, version, among_candidates=True)


async def replace(
    conn: AsyncConnection, cohort: int, version: int, amplitude_ids: Sequence[int]
) -> tuple[int, int]:
    """A static cohort's new contents (upload with existing_cohort_id)."""
    await _fill_next_with(conn, amplitude_ids)
    return await _diff_and_apply(conn, cohort, version)


async def add(conn: AsyncConnection, cohort: int, version: int, ids: Sequence[int]) -> int:
    await _fill_next_with(conn, ids)
    entered, _ = await _diff_and_apply(conn, cohort, version, only_entered=True)
    return entered


async def remove(conn: AsyncConnection, cohort: int, version: int, ids: Sequence[int]) -> int:
    """Members among ``ids`` leave: the next set is the members minus those ids."""
    await d.fresh_id_table(conn, NEXT)
    gone = sorted(set(ids))
    await conn.exec_driver_sql(
        _sql(conn, f"INSERT INTO {NEXT} (amplitude_id) SELECT amplitude_id FROM cohort_members "
                   "WHERE cohort = {m}"), (cohort,),
    )  # fmt: skip
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    if gone:
        await conn.exec_driver_sql(f"DELETE FROM {NEXT} WHERE amplitude_id = {mark}",
                                   [(i,) for i in gone])  # fmt: skip
    _, left = await _diff_and_apply(conn, cohort, version, only_left=True)
    return left


async def size(conn: AsyncConnection, cohort: int) -> int:
    query = (
        select(func.count()).select_from(cohort_members).where(cohort_members.c.cohort == cohort)
    )
    return int((await conn.execute(query)).scalar_one())


async def members_page(
    conn: AsyncConnection, cohort: int, after: int, limit: int
) -> list[RowMapping]:
    """Members with their user id and properties, in Amplitude ID order (keyset pages)."""
    m = cohort_members.c
    query = (
        select(m.amplitude_id, users.c.user_id, users.c.user_properties,
               users.c.device_properties)
        .select_from(cohort_members.outerjoin(users, users.c.amplitude_id == m.amplitude_id))
        .where(m.cohort == cohort, m.amplitude_id > after)
        .order_by(m.amplitude_id)
        .limit(limit)
    )  # fmt: skip
    return list((await conn.execute(query)).mappings())


async def changes(conn: AsyncConnection, cohort: int, version: int) -> dict[int, int]:
    """amplitude_id → +1 (entered) / -1 (left) at one computation."""
    k = cohort_changes.c
    query = select(k.amplitude_id, k.change).where(k.cohort == cohort, k.version == version)
    return {int(a): int(ch) for a, ch in await conn.execute(query)}


async def users_by_user_id(
    conn: AsyncConnection, project_id: int, user_ids: Sequence[str]
) -> dict[str, int]:
    rows = await call(
        conn,
        bulk.fetch_in,
        "SELECT user_id, amplitude_id FROM users WHERE project_id = {mark} "
        "AND user_id IN ({marks})",
        (project_id,),
        list(user_ids),
    )
    return {row[0]: int(row[1]) for row in rows}


async def users_by_amplitude_id(
    conn: AsyncConnection, project_id: int, amplitude_ids: Sequence[int]
) -> set[int]:
    rows = await call(
        conn,
        bulk.fetch_in,
        "SELECT amplitude_id FROM users WHERE project_id = {mark} AND amplitude_id IN ({marks})",
        (project_id,),
        list(amplitude_ids),
    )
    return {int(row[0]) for row in rows}


async def profile_cohorts(conn: AsyncConnection, amplitude_id: int) -> list[str]:
    """Ids of the cohorts flagged for the User Profile API that hold this user."""
    query = (
        select(cohorts.c.id)
        .join(cohort_members, cohort_members.c.cohort == cohorts.c.pk)
        .where(cohort_members.c.amplitude_id == amplitude_id, cohorts.c.profile_api.is_(True),
               cohorts.c.archived.is_(False))
        .order_by(cohorts.c.id)
    )  # fmt: skip
    return list((await conn.execute(query)).scalars())
