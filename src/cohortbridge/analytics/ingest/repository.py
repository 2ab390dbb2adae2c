"""All SQL on events and their insert ids."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.ingest.models import event_inserts, events
from cohortbridge.db import bulk
from cohortbridge.db.bulk import BulkInsert
from cohortbridge.db.unit import call

EVENT_COLUMNS = ("project_id", "amplitude_id", "event_type", "time", "user_id", "device_id",
                 "session_id", "insert_id", "event_properties", "user_properties", "data",
                 "server_received_at")  # fmt: skip
_INSERT_EVENTS = BulkInsert(events, EVENT_COLUMNS)
_SEEN = BulkInsert(
    event_inserts,
    ("project_id", "device_id", "insert_id", "seen_at"),
    conflict=("project_id", "device_id", "insert_id"),
    updates=lambda _dialect: {"seen_at": "excluded.seen_at"},
)


async def seen_inserts(
    conn: AsyncConnection, project_id: int, pairs: Sequence[tuple[str, str]], since: datetime
) -> set[tuple[str, str]]:
    """Which (device, insert_id) pairs arrived since ``since``."""
    if not pairs:
        return set()
    ids = sorted({insert_id for _device, insert_id in pairs})
    rows = await call(
        conn,
        bulk.fetch_in,
        "SELECT device_id, insert_id, seen_at FROM event_inserts "
        "WHERE project_id = {mark} AND insert_id IN ({marks})",
        (project_id,),
        ids,
    )
    wanted = set(pairs)
    return {
        (row[0], row[1]) for row in rows
        if (row[0], row[1]) in wanted and (bulk.read_time(row[2]) or since) >= since
    }  # fmt: skip


async def record_inserts(conn: AsyncConnection, rows: Sequence[Sequence[Any]]) -> None:
    await call(conn, _SEEN.execute, sorted(rows, key=lambda row: (row[1], row[2])))


async def insert_events(conn: AsyncConnection, rows: Sequence[Sequence[Any]]) -> None:
    await call(conn, _INSERT_EVENTS.execute, rows)


async def prune(
    conn: AsyncConnection, *, inserts_before: datetime, events_before: datetime | None
) -> None:
    """Forget insert ids past the de-duplication window and events past retention."""
    await conn.execute(delete(event_inserts).where(event_inserts.c.seen_at < inserts_before))
    if events_before is not None:
        await conn.execute(delete(events).where(events.c.time < events_before))
