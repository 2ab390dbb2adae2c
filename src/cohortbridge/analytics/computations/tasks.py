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
