"""Job handlers of ingestion: plain async functions, callable directly in tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from cohortbridge.analytics.ingest import repository as repo
from cohortbridge.analytics.ingest.service import DEDUPE_WINDOW
from cohortbridge.config import Settings
from cohortbridge.db.engine import Database
from cohortbridge.kit.clock import utcnow


async def prune(db: Database, settings: Settings, now: datetime | None = None) -> None:
    """``ingest.prune``: forget insert ids past the 7-day window and, with a retention setting,
    events older than it. Idempotent."""
    moment = now or utcnow()
    retention = settings.event_retention_days
    async with db.write_turn(), db.transaction() as conn:
        await repo.prune(
            conn,
            inserts_before=moment - DEDUPE_WINDOW,
            events_before=moment - timedelta(days=retention) if retention else None,
        )
