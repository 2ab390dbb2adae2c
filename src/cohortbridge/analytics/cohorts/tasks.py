"""Job handlers of cohorts: plain async functions, callable directly in tests."""

from __future__ import annotations

import logging
from datetime import datetime

from cohortbridge.analytics.cohorts import service
from cohortbridge.analytics.cohorts.repository import definitions as repo
from cohortbridge.db.engine import Database
from cohortbridge.kit.clock import utcnow

log = logging.getLogger("cohortbridge.cohorts")


async def compute_due(db: Database, now: datetime | None = None) -> int:
    """``cohorts.compute_due``: compute every behavioral cohort whose time has come (hourly by
    default, every minute for real-time ones), each in its own transaction. A cohort is
    claimed first, so two workers never compute the same one for the same tick."""
    moment = now or utcnow()
    async with db.read() as conn:
        due = await repo.due(conn, moment)
    computed = 0
    for item in due:
        if await _compute(db, item["pk"], item["next_compute_at"], moment):
            computed += 1
    return computed


async def compute_one(db: Database, pk: int, now: datetime | None = None) -> bool:
    """``cohorts.compute``: one cohort, if its time has come (a queued job may have waited
    behind the computation before it)."""
    moment = now or utcnow()
    async with db.read() as conn:
        row = await repo.by_pk(conn, pk)
    if row is None or row["next_compute_at"] is None or row["next_compute_at"] > moment:
        return False
    return await _compute(db, pk, row["next_compute_at"], moment)


async def _compute(db: Database, pk: int, expected: datetime, moment: datetime) -> bool:
    async with db.write_turn(), db.transaction() as conn:
        row = await repo.by_pk(conn, pk)
        if row is None or not await repo.claim(conn, pk, expected, moment):
            return False
        done = await service.compute(conn, row, moment)
    log.info("cohort %s: version %d, %d users (+%d −%d)", done.cohort_id, done.version,
             done.size, done.entered, done.left)  # fmt: skip
    return True
