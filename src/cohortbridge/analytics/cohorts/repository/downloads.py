"""SQL on cohort download requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.cohorts.models import cohort_downloads, cohorts

k = cohort_downloads.c


async def insert_request(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(cohort_downloads).values(**row))


async def get(conn: AsyncConnection, project_id: int, request_id: str) -> RowMapping | None:
    query = (
        select(cohort_downloads, cohorts.c.id.label("cohort_id"))
        .join(cohorts, cohorts.c.pk == k.cohort)
        .where(k.request_id == request_id, cohorts.c.project_id == project_id)
    )
    return (await conn.execute(query)).mappings().first()


async def finish(
    conn: AsyncConnection, request_id: str, *, status: str, at: datetime, rows: int | None,
    error: str | None = None,
) -> None:  # fmt: skip
    stmt = update(cohort_downloads).where(k.request_id == request_id)
    await conn.execute(stmt.values(status=status, finished_at=at, rows=rows, error=error))


async def get_any(conn: AsyncConnection, request_id: str) -> RowMapping | None:
    return (
        (await conn.execute(select(cohort_downloads).where(k.request_id == request_id)))
        .mappings()
        .first()
    )
