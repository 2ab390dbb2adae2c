"""SQL on cohort rows and the references between them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.cohorts.models import cohort_computations, cohort_references, cohorts

c = cohorts.c


async def insert_cohort(conn: AsyncConnection, row: dict[str, Any]) -> int:
    result = await conn.execute(insert(cohorts).values(**row).returning(c.pk))
    return int(result.scalar_one())


async def get(conn: AsyncConnection, project_id: int, cohort_id: str) -> RowMapping | None:
    query = select(cohorts).where(c.project_id == project_id, c.id == cohort_id)
    return (await conn.execute(query)).mappings().first()


async def by_public_id(conn: AsyncConnection, cohort_id: str) -> RowMapping | None:
    return (await conn.execute(select(cohorts).where(c.id == cohort_id))).mappings().first()


async def by_pk(conn: AsyncConnection, pk: int) -> RowMapping | None:
    return (await conn.execute(select(cohorts).where(c.pk == pk))).mappings().first()


async def many(conn: AsyncConnection, project_id: int, ids: Sequence[str]) -> list[RowMapping]:
    if not ids:
        return []
    query = select(cohorts).where(c.project_id == project_id, c.id.in_(list(ids)))
    return list((await conn.execute(query)).mappings())


async def listing(
    conn: AsyncConnection, project_id: int, ids: Sequence[str] | None = None
) -> list[RowMapping]:
    query = select(cohorts).where(c.project_id == project_id, c.archived.is_(False))
    if ids is not None:
        query = query.where(c.id.in_(list(ids)))
    return list((await conn.execute(query.order_by(c.created_at, c.pk))).mappings())


async def update_cohort(conn: AsyncConnection, pk: int, values: dict[str, Any]) -> None:
    await conn.execute(update(cohorts).where(c.pk == pk).values(**values))


async def set_references(conn: AsyncConnection, pk: int, referenced: Sequence[int]) -> None:
    r = cohort_references.c
    await conn.execute(delete(cohort_references).where(r.cohort == pk))
    if referenced:
        rows = [{"cohort": pk, "referenced": ref} for ref in sorted(set(referenced))]
        await conn.execute(insert(cohort_references), rows)


async def reference_graph(conn: AsyncConnection, project_id: int) -> dict[str, set[str]]:
    """Public id → the public ids its "part of cohort" conditions name, for one project."""
    named = cohorts.alias("named")
    r = cohort_references.c
    query = (
        select(c.id, named.c.id)
        .select_from(
            cohort_references.join(cohorts, c.pk == r.cohort).join(
                named, named.c.pk == r.referenced
            )
        )
        .where(c.project_id == project_id)
    )
    graph: dict[str, set[str]] = {}
    for source, target in await conn.execute(query):
        graph.setdefault(source, set()).add(target)
    return graph


async def due(conn: AsyncConnection, now: datetime, limit: int = 100) -> list[RowMapping]:
    """Behavioral cohorts whose next computation time has come, oldest first."""
    query = (
        select(c.pk, c.next_compute_at)
        .where(c.kind == "behavioral", c.archived.is_(False), c.next_compute_at <= now)
        .order_by(c.next_compute_at)
        .limit(limit)
    )
    return list((await conn.execute(query)).mappings())


async def claim(conn: AsyncConnection, pk: int, expected: datetime, then: datetime) -> bool:
    """Move the cohort's next computation on; False when another worker did it first."""
    stmt = update(cohorts).where(c.pk == pk, c.next_compute_at == expected)
    result = await conn.execute(stmt.values(next_compute_at=then))
    return bool(result.rowcount)


async def record_computation(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(cohort_computations).values(**row))


async def computations(conn: AsyncConnection, pk: int, limit: int = 50) -> list[RowMapping]:
    k = cohort_computations.c
    query = select(cohort_computations).where(k.cohort == pk).order_by(k.version.desc())
    return list((await conn.execute(query.limit(limit))).mappings())
