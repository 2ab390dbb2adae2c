"""Scheduled work held by a lease: rows with ``id``, ``enabled``, ``next_run_at``,
``leased_until`` and ``leased_by`` (cohort syncs, property syncs). Any number of processes may
look for due work; the lease makes one of them run it, and a run whose process died is taken
over when the lease ends, or at once by the same owner (the job queue names a lease after the
entity's queue lock, which one job holds at a time)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.db.engine import Database

# The error of a run's history row when its process died and a later run took the lease over.
INTERRUPTED = "interrupted: the process running it stopped; the next run went on from there"


@dataclass(frozen=True)
class Claim:
    """How a run takes its lease: as whom, and whether only when the row is due."""

    owner: str | None = None
    due_only: bool = False


def _free(table: Table, now: datetime) -> Any:
    return or_(table.c.leased_until.is_(None), table.c.leased_until < now)


# The owner prefix of the job queue's leases (``queue:<the entity's lock>``).
QUEUE_OWNER = "queue:"


async def due(
    conn: AsyncConnection, table: Table, now: datetime, *, queue: bool = False
) -> list[str]:
    """Due rows nobody holds; with ``queue``, also those the queue holds: its lock says
    whether a job still runs them, and one whose worker died is taken over at once."""
    c = table.c
    takeable = _free(table, now)
    if queue:
        takeable = or_(takeable, c.leased_by.startswith(QUEUE_OWNER, autoescape=True))
    query = (
        select(c.id)
        .where(c.enabled.is_(True), c.next_run_at <= now, takeable)
        .order_by(c.next_run_at)
    )
    return list((await conn.execute(query)).scalars())


async def lease(
    conn: AsyncConnection, table: Table, key: str, now: datetime, until: datetime, *,
    owner: str | None = None, due_only: bool = False,
) -> bool:  # fmt: skip
    """Hold the row for one run; False when another run holds it (or, with ``due_only``, when
    its time has not come: a queued job that waited behind the run before it)."""
    c = table.c
    free = _free(table, now) if owner is None else or_(_free(table, now), c.leased_by == owner)
    stmt = update(table).where(c.id == key, free)
    if due_only:
        stmt = stmt.where(c.enabled.is_(True), c.next_run_at <= now)
    result = await conn.execute(stmt.values(leased_until=until, leased_by=owner))
    return bool(result.rowcount)


async def interrupt_runs(conn: AsyncConnection, runs: Table, key: str, now: datetime) -> None:
    """Close the history rows (``sync``, ``status``, ``error``, ``finished_at``) of runs whose
    process died; the caller holds the lease now."""
    r = runs.c
    stmt = update(runs).where(r.sync == key, r.status == "running")
    await conn.execute(stmt.values(status="failed", error=INTERRUPTED, finished_at=now))


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
