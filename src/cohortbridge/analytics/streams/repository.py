"""All SQL of event streaming: streams, the outbox and delivery counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.destinations.models import destinations
from cohortbridge.analytics.streams.models import event_streams, stream_outbox, stream_stats
from cohortbridge.db import dialect as d
from cohortbridge.db.bulk import BulkInsert
from cohortbridge.db.unit import call

st, o = event_streams.c, stream_outbox.c
OUTBOX_COLUMNS = ("stream", "kind", "payload", "enqueued_at", "attempts", "next_attempt_at")
_ENQUEUE = BulkInsert(stream_outbox, OUTBOX_COLUMNS)


async def insert_stream(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(event_streams).values(**row))


async def stream(conn: AsyncConnection, stream_id: str) -> RowMapping | None:
    return (await conn.execute(select(event_streams).where(st.id == stream_id))).mappings().first()


async def update_stream(conn: AsyncConnection, stream_id: str, values: dict[str, Any]) -> None:
    await conn.execute(update(event_streams).where(st.id == stream_id).values(**values))


async def listing(conn: AsyncConnection, project_id: int) -> list[RowMapping]:
    query = select(event_streams).where(st.project_id == project_id).order_by(st.created_at)
    return list((await conn.execute(query)).mappings())


async def enabled_for(conn: AsyncConnection, project_id: int) -> list[RowMapping]:
    """The project's enabled streams with their destination's app id (read per ingest)."""
    query = (
        select(st.id, st.config, destinations.c.app_id)
        .select_from(event_streams.join(destinations, destinations.c.id == st.destination))
        .where(st.project_id == project_id, st.enabled.is_(True))
        .order_by(st.id)
    )
    return list((await conn.execute(query)).mappings())


async def enqueue(conn: AsyncConnection, rows: Sequence[Sequence[Any]]) -> None:
    """Outbox rows as (stream, kind, payload, enqueued_at, attempts, next_attempt_at)."""
    await call(conn, _ENQUEUE.execute, rows)


def _due(now: datetime) -> list[Any]:
    return [o.next_attempt_at <= now, or_(o.leased_until.is_(None), o.leased_until < now)]


async def streams_with_work(conn: AsyncConnection, now: datetime) -> list[str]:
    has_work = select(o.id).where(o.stream == st.id, *_due(now)).exists()
    query = select(st.id).where(st.enabled.is_(True), has_work).order_by(st.id)
    return list((await conn.execute(query)).scalars())


async def claim(
    conn: AsyncConnection, stream_id: str, now: datetime, until: datetime, limit: int
) -> list[RowMapping]:
    """Hold up to ``limit`` due rows of the stream, longest due first, until ``until``.

    By (next_attempt_at, id), the order of the index: rows waiting for a later attempt are
    never scanned, however many an outage left."""
    query = (
        select(o.id, o.kind, o.payload, o.enqueued_at, o.attempts)
        .where(o.stream == stream_id, *_due(now))
        .order_by(o.next_attempt_at, o.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list((await conn.execute(query)).mappings())
    if rows:
        ids = [r["id"] for r in rows]
        await conn.execute(update(stream_outbox).where(o.id.in_(ids)).values(leased_until=until))
    return rows


async def acknowledge(conn: AsyncConnection, ids: Sequence[int]) -> None:
    if ids:
        await conn.execute(delete(stream_outbox).where(o.id.in_(list(ids))))


async def kill(conn: AsyncConnection, dead: Sequence[tuple[int, str]], attempts: int) -> None:
    """Rows engage rejected, or that ran out of attempts: kept, with why, never sent again."""
    for row_id, error in dead:
        await conn.execute(
            update(stream_outbox).where(o.id == row_id).values(
                next_attempt_at=None, leased_until=None, error=error[:1000],
                attempts=o.attempts + attempts)
        )  # fmt: skip


async def postpone(conn: AsyncConnection, ids: Sequence[int], when: datetime, error: str) -> None:
    """A failed attempt: the rows wait until ``when`` for the next one."""
    if ids:
        await conn.execute(
            update(stream_outbox).where(o.id.in_(list(ids))).values(
                attempts=o.attempts + 1, next_attempt_at=when, leased_until=None,
                error=error[:1000])
        )  # fmt: skip


async def release(conn: AsyncConnection, ids: Sequence[int]) -> None:
    if ids:
        await conn.execute(
            update(stream_outbox).where(o.id.in_(list(ids))).values(leased_until=None)
        )


STATS = ("requests", "forwarded", "rejected", "retried", "dead", "latency_ms_sum")


async def add_stats(
    conn: AsyncConnection, stream_id: str, minute: datetime, counts: dict[str, int]
) -> None:
    dialect = conn.dialect.name
    c = stream_stats.c
    stmt = d.upsert(dialect, stream_stats, ("stream", "minute"), lambda new: {
        **{name: c[name] + new[name] for name in STATS},
        "latency_ms_max": d.greatest(dialect, c.latency_ms_max, new.latency_ms_max),
    })  # fmt: skip
    row = {"stream": stream_id, "minute": minute, "latency_ms_max": counts.get("latency_ms_max", 0)}
    await conn.execute(stmt.values(**row, **{name: counts.get(name, 0) for name in STATS}))


async def stats(conn: AsyncConnection, stream_id: str, since: datetime) -> list[RowMapping]:
    c = stream_stats.c
    query = (
        select(stream_stats)
        .where(c.stream == stream_id, c.minute >= since)
        .order_by(c.minute.desc())
    )
    return list((await conn.execute(query)).mappings())


async def backlog(conn: AsyncConnection, stream_id: str) -> dict[str, int]:
    """Rows waiting (including retries) and dead rows of the stream."""
    waiting = func.sum(case((o.next_attempt_at.is_not(None), 1), else_=0))
    query = select(func.count(), waiting).where(o.stream == stream_id)
    total, pending = (await conn.execute(query)).one()
    pending = int(pending or 0)
    return {"pending": pending, "dead": int(total or 0) - pending}


async def dead_rows(conn: AsyncConnection, stream_id: str, limit: int) -> list[RowMapping]:
    query = (
        select(o.id, o.kind, o.payload, o.enqueued_at, o.attempts, o.error)
        .where(o.stream == stream_id, o.next_attempt_at.is_(None))
        .order_by(o.id.desc())
        .limit(limit)
    )
    return list((await conn.execute(query)).mappings())


async def prune(conn: AsyncConnection, before: datetime) -> None:
    """Dead rows and counts are kept 14 days."""
    await conn.execute(
        delete(stream_outbox).where(o.next_attempt_at.is_(None), o.enqueued_at < before)
    )
    await conn.execute(delete(stream_stats).where(stream_stats.c.minute < before))
