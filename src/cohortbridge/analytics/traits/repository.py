"""All SQL of user property and computation syncs: syncs, what engage holds, run history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.computations.models import computation_values
from cohortbridge.analytics.identity.models import users
from cohortbridge.analytics.traits.models import trait_runs, trait_state, trait_syncs
from cohortbridge.db import dialect as d
from cohortbridge.db import leases

s, t, u = trait_syncs.c, trait_state.c, users.c


async def insert_sync(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(trait_syncs).values(**row))


async def sync(conn: AsyncConnection, sync_id: str) -> RowMapping | None:
    return (await conn.execute(select(trait_syncs).where(s.id == sync_id))).mappings().first()


async def update_sync(conn: AsyncConnection, sync_id: str, values: dict[str, Any]) -> None:
    await conn.execute(update(trait_syncs).where(s.id == sync_id).values(**values))


async def due(conn: AsyncConnection, now: datetime, *, queue: bool = False) -> list[str]:
    return await leases.due(conn, trait_syncs, now, queue=queue)


async def lease(
    conn: AsyncConnection, sync_id: str, now: datetime, until: datetime, *,
    owner: str | None = None, due_only: bool = False,
) -> bool:  # fmt: skip
    return await leases.lease(
        conn, trait_syncs, sync_id, now, until, owner=owner, due_only=due_only
    )


async def active_users(
    conn: AsyncConnection, project_id: int, since: datetime, *, after: int, limit: int,
    computation_pk: int | None,
) -> list[RowMapping]:  # fmt: skip
    """A page of users active since ``since`` (Amplitude ID order), with their user id, user
    properties and, for a computation, its value."""
    columns: list[Any] = [u.amplitude_id, u.user_id, u.user_properties]
    source: Any = users
    if computation_pk is not None:
        v = computation_values.c
        source = users.outerjoin(
            computation_values, and_(v.computation == computation_pk,
                                     v.amplitude_id == u.amplitude_id))  # fmt: skip
        columns.append(v.value.label("computed"))
    query = (
        select(*columns)
        .select_from(source)
        .where(u.project_id == project_id, u.last_active_at >= since, u.amplitude_id > after)
        .order_by(u.amplitude_id)
        .limit(limit)
    )
    return list((await conn.execute(query)).mappings())


async def held(
    conn: AsyncConnection, sync_id: str, amplitude_ids: Sequence[int]
) -> dict[int, tuple[str, Any]]:
    if not amplitude_ids:
        return {}
    query = select(t.amplitude_id, t.identifier, t.value).where(
        t.sync == sync_id, t.amplitude_id.in_(list(amplitude_ids))
    )
    return {int(a): (i, v) for a, i, v in await conn.execute(query)}


async def remember(
    conn: AsyncConnection, sync_id: str, rows: Sequence[tuple[int, str, Any]]
) -> None:
    """engage took these values: (amplitude_id, identifier, value)."""
    if not rows:
        return
    stmt = d.upsert(conn.dialect.name, trait_state, ("sync", "amplitude_id"),
                    lambda new: {"identifier": new.identifier, "value": new.value})  # fmt: skip
    await conn.execute(stmt, [
        {"sync": sync_id, "amplitude_id": a, "identifier": i, "value": v}
        for a, i, v in sorted(rows, key=lambda row: row[0])
    ])  # fmt: skip


async def start_run(conn: AsyncConnection, row: dict[str, Any]) -> int:
    result = await conn.execute(insert(trait_runs).values(**row).returning(trait_runs.c.id))
    return int(result.scalar_one())


async def interrupt_runs(conn: AsyncConnection, sync_id: str, now: datetime) -> None:
    await leases.interrupt_runs(conn, trait_runs, sync_id, now)


async def finish_run(conn: AsyncConnection, run_id: int, values: dict[str, Any]) -> None:
    await conn.execute(update(trait_runs).where(trait_runs.c.id == run_id).values(**values))


async def runs(conn: AsyncConnection, sync_id: str, since: datetime) -> list[RowMapping]:
    r = trait_runs.c
    query = (
        select(trait_runs)
        .where(r.sync == sync_id, r.started_at >= since)
        .order_by(r.started_at.desc(), r.id.desc())
    )
    return list((await conn.execute(query)).mappings())


async def forget_runs(conn: AsyncConnection, before: datetime) -> None:
    await conn.execute(delete(trait_runs).where(trait_runs.c.started_at < before))
