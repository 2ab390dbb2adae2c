"""The insert-id de-duplication store: (device, insert id) pairs looked up through the primary
key, in statements of at most ``PAIRS_PER_STATEMENT`` pairs, within the 7-day window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import inspect

from cohortbridge.analytics.ingest import repository as repo
from cohortbridge.db.engine import Database

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


async def test_stored_pairs_are_found_and_others_are_not(
    analytics_db: Database, project: dict[str, Any]
) -> None:
    pid = project["project_id"]
    count = repo.PAIRS_PER_STATEMENT + 500  # more than one statement's worth on SQLite
    stored = [(f"device-{i % 700}", f"insert-{i}") for i in range(count)]
    old = ("device-old", "insert-old")
    async with analytics_db.transaction() as conn:
        await repo.record_inserts(conn, [(pid, d, i, NOW) for d, i in stored])
        await repo.record_inserts(conn, [(pid, *old, NOW - timedelta(days=8))])
    asked = [
        *stored,
        old,  # seen, but before the window
        ("device-1", "insert-0"),  # a stored insert id on another device
        ("device-new", "insert-new"),
        stored[0],  # asked twice
    ]
    async with analytics_db.read() as conn:
        seen = await repo.seen_inserts(conn, pid, asked, NOW - timedelta(days=7))
    assert seen == set(stored)


async def test_the_pairs_are_read_through_the_primary_key(analytics_db: Database) -> None:
    async with analytics_db.read() as conn:
        indexes = await conn.run_sync(lambda c: inspect(c).get_indexes("event_inserts"))
        if analytics_db.dialect == "sqlite":
            plan = await conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + repo._pairs_sql(2), ("d", "i", "d", "i", 1)
            )
            steps = " ".join(str(row[-1]) for row in plan)
            assert "(project_id=? AND device_id=? AND insert_id=?)" in steps
    # The index by insert id alone (migration a0006) is gone (a0010): no longer read, and
    # writing it cost a random page per event.
    assert [ix["column_names"] for ix in indexes] == [["seen_at"]]
