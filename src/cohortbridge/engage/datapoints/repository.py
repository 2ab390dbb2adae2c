"""All SQL on the data-point ledger."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.db.bulk import BulkInsert
from cohortbridge.db.unit import Executor
from cohortbridge.engage.datapoints.models import datapoints

# Every write request ends with this statement: its SQL text is cached (see db/bulk.py).
_ADD = BulkInsert(
    datapoints,
    ("workspace_id", "day", "source", "count"),
    conflict=("workspace_id", "day", "source"),
    updates=lambda _dialect: {"count": "datapoints.count + excluded.count"},
)


def add(ex: Executor, workspace_id: str, day: date, source: str, count: int) -> None:
    _ADD.execute(ex, [(workspace_id, day, source, count)])


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
