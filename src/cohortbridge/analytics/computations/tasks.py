"""Job handlers of computations."""

from __future__ import annotations

from datetime import datetime

from cohortbridge.analytics.computations import repository as repo
from cohortbridge.analytics.computations import service
from cohortbridge.db.engine import Database
from cohortbridge.kit.clock import utcnow


async def compute_due(db: Database, now: datetime | None = None) -> int:
    """``computations.compute_due``: recompute the computations whose time has come."""
    moment = now or utcnow()
    async with db.read() as conn:
        due = await repo.due(conn, moment)
    for row in due:
        async with db.write_turn(), db.transaction() as conn:
            await service.compute(conn, row, moment)
    return len(due)


async def compute_one(db: Database, pk: int, now: datetime | None = None) -> bool:
    """``computations.compute``: one computation, if its time has come (a queued job may have
    waited behind the run before it)."""
    moment = now or utcnow()
    async with db.write_turn(), db.transaction() as conn:
        row = await repo.due_one(conn, pk, moment)
        if row is None:
            return False
        await service.compute(conn, row, moment)
    return True
