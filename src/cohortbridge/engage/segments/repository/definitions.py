"""SQL on segment definitions and the references between them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.engage.segments.models import segment_references, segments

s = segments.c
PAGE = 100  # /segments/list pages (spec braze §5.1)


async def insert_segment(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(segments).values(**row))


async def get(
    conn: AsyncConnection, segment_id: str, workspace_id: str | None = None
) -> RowMapping | None:
    """A segment by id, within a workspace unless ``workspace_id`` is None (the admin CLI)."""
    query = select(segments).where(s.id == segment_id)
    if workspace_id is not None:
        query = query.where(s.workspace_id == workspace_id)
    return (await conn.execute(query)).mappings().first()


async def get_many(
    conn: AsyncConnection, workspace_id: str, segment_ids: Sequence[str]
) -> list[RowMapping]:
    if not segment_ids:
        return []
    query = select(segments).where(s.workspace_id == workspace_id, s.id.in_(list(segment_ids)))
    return list((await conn.execute(query)).mappings())


async def update_segment(conn: AsyncConnection, segment_id: str, values: dict[str, Any]) -> None:
    await conn.execute(update(segments).where(s.id == segment_id).values(**values))


async def archive(conn: AsyncConnection, segment_id: str, at: datetime) -> None:
    stmt = update(segments).where(s.id == segment_id, s.archived_at.is_(None))
    await conn.execute(stmt.values(archived_at=at, updated_at=at))


async def page(
    conn: AsyncConnection, workspace_id: str, number: int, descending: bool
) -> list[RowMapping]:
    """One page of active segments, oldest first unless ``descending``."""
    order = (s.created_at.desc(), s.id.desc()) if descending else (s.created_at, s.id)
    query = (
        select(s.id, s.name, s.analytics_tracking_enabled, s.tags)
        .where(s.workspace_id == workspace_id, s.archived_at.is_(None))
        .order_by(*order)
        .offset(number * PAGE)
        .limit(PAGE)
    )
    return list((await conn.execute(query)).mappings())


async def set_references(conn: AsyncConnection, segment_id: str, referenced: set[str]) -> None:
    r = segment_references.c
    await conn.execute(delete(segment_references).where(r.segment_id == segment_id))
    if referenced:
        rows = [{"segment_id": segment_id, "referenced_id": ref} for ref in sorted(referenced)]
        await conn.execute(insert(segment_references), rows)


async def referenced_by(conn: AsyncConnection, segment_id: str) -> list[str]:
    """Segments whose "Segment Membership" filters name this one."""
    r = segment_references.c
    query = select(r.segment_id).where(r.referenced_id == segment_id).order_by(r.segment_id)
    return list((await conn.execute(query)).scalars())


async def references_of(conn: AsyncConnection, segment_ids: Sequence[str]) -> set[str]:
    """Which of these segments name other segments themselves."""
    if not segment_ids:
        return set()
    r = segment_references.c
    query = select(r.segment_id).where(r.segment_id.in_(list(segment_ids))).distinct()
    return set((await conn.execute(query)).scalars())
