"""SQL on segment exports: one running export per segment, heartbeats, results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.engage.segments.models import segment_exports

x = segment_exports.c


async def running(conn: AsyncConnection, workspace_id: str, segment_id: str) -> RowMapping | None:
    query = select(segment_exports).where(
        x.workspace_id == workspace_id, x.running_segment == segment_id
    )
    return (await conn.execute(query)).mappings().first()


async def claim(conn: AsyncConnection, row: dict[str, Any]) -> bool:
    """Insert a running export; False when another export of the segment got there first.

    The savepoint keeps the transaction usable after the unique violation (PostgreSQL).
    """
    try:
        async with conn.begin_nested():
            await conn.execute(insert(segment_exports).values(**row))
    except IntegrityError:
        return False
    return True


async def get(conn: AsyncConnection, export_id: str) -> RowMapping | None:
    query = select(segment_exports).where(x.id == export_id)
    return (await conn.execute(query)).mappings().first()


async def by_prefix(conn: AsyncConnection, object_prefix: str) -> RowMapping | None:
    query = select(segment_exports).where(x.object_prefix == object_prefix)
    return (await conn.execute(query)).mappings().first()


async def heartbeat(conn: AsyncConnection, export_id: str, at: datetime, users: int) -> None:
    stmt = update(segment_exports).where(x.id == export_id, x.status == "running")
    await conn.execute(stmt.values(heartbeat_at=at, users=users))


async def finish(
    conn: AsyncConnection,
    export_id: str,
    *,
    status: str,
    at: datetime,
    users: int,
    error: str | None = None,
) -> None:
    stmt = update(segment_exports).where(x.id == export_id, x.status == "running")
    await conn.execute(
        stmt.values(status=status, running_segment=None, finished_at=at, users=users, error=error)
    )
