"""Scheduled work held by a lease: rows with ``id``, ``enabled``, ``next_run_at`` and
``leased_until`` (cohort syncs, property syncs). Any number of processes may look for due work;
the lease makes one of them run it, and a run whose process died is taken over when it ends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Table, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.db.engine import Database


def _free(table: Table, now: datetime) -> Any:
    return or_(table.c.leased_until.is_(None), table.c.leased_until < now)


async def due(conn: AsyncConnection, table: Table, now: datetime) -> list[str]:
    c = table.c
    query = (
        select(c.id)
        .where(c.enabled.is_(True), c.next_run_at <= now, _free(table, now))
        .order_by(c.next_run_at)
    )
    return list((await conn.execute(query)).scalars())


async def lease(
    conn: AsyncConnection, table: Table, key: str, now: datetime, until: datetime
) -> bool:
    """Hold the row for one run; False when another run holds it."""
    stmt = update(table).where(table.c.id == key, _free(table, now)).values(leased_until=until)
    return bool((await conn.execute(stmt)).rowcount)


async def run_due(
    db: Database, table: Table, now: datetime, run: Callable[[str], Awaitable[object | None]]
) -> int:
    """Run every due row, one after another; how many ran (None from ``run``: held elsewhere)."""
    async with db.read() as conn:
        found = await due(conn, table, now)
    ran = 0
    for key in found:
        if await run(key) is not None:
            ran += 1
    return ran
