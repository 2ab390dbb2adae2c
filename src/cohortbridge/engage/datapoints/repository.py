"""All SQL on the data-point ledger."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.db import dialect as d
from cohortbridge.engage.datapoints.models import datapoints


async def add(conn: AsyncConnection, workspace_id: str, day: date, source: str, count: int) -> None:
    stmt = d.upsert(
        conn.dialect.name,
        datapoints,
        ["workspace_id", "day", "source"],
        lambda ex: {"count": datapoints.c.count + ex.count},
    )
    await conn.execute(
        stmt, {"workspace_id": workspace_id, "day": day, "source": source, "count": count}
    )


async def rows(
    conn: AsyncConnection, workspace_id: str, since: date | None = None
) -> list[RowMapping]:
    query = select(datapoints.c.day, datapoints.c.source, datapoints.c.count).where(
        datapoints.c.workspace_id == workspace_id
    )
    if since is not None:
        query = query.where(datapoints.c.day >= since)
    query = query.order_by(datapoints.c.day, datapoints.c.source)
    return list((await conn.execute(query)).mappings())
