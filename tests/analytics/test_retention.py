"""ingest.prune: insert ids past 7 days are forgotten, events past retention are deleted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from cohortbridge.analytics.ingest import tasks
from cohortbridge.analytics.ingest.models import event_inserts, events
from cohortbridge.config import Settings
from cohortbridge.db.engine import Database
from tests.analytics.test_ingest_wire import upload


async def counts(db: Database) -> tuple[int, int]:
    async with db.read() as conn:
        stored = (await conn.execute(select(func.count()).select_from(events))).scalar_one()
        ids = (await conn.execute(select(func.count()).select_from(event_inserts))).scalar_one()
    return int(stored), int(ids)


async def test_prune_follows_the_windows(
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any],
    settings: Settings,
) -> None:  # fmt: skip
    now = datetime.now(UTC)
    old = int((now - timedelta(days=40)).timestamp() * 1000)
    await upload(analytics, project, [
        {"user_id": "retained", "event_type": "old", "time": old, "insert_id": "i-old"},
        {"user_id": "retained", "event_type": "new", "insert_id": "i-new"},
    ])  # fmt: skip
    await tasks.prune(analytics_db, settings)
    assert await counts(analytics_db) == (2, 2)  # no retention set: events stay
    await tasks.prune(analytics_db, settings, now=now + timedelta(days=8))
    assert await counts(analytics_db) == (2, 0)  # insert ids past 7 days are forgotten
    kept = settings.model_copy(update={"event_retention_days": 30})
    await tasks.prune(analytics_db, kept)
    assert await counts(analytics_db) == (1, 0)
    # An insert id forgotten may arrive again and is stored again.
    again = await upload(analytics, project, [{"user_id": "retained", "event_type": "new",
                                               "insert_id": "i-new"}])  # fmt: skip
    assert again.status_code == 200
