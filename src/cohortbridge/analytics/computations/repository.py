"""All SQL of computations: definitions and their values, computed set-based."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Text, and_, cast, delete, func, insert, literal, over, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.cohorts.logic import definition as d
from cohortbridge.analytics.cohorts.repository import audience
from cohortbridge.analytics.computations.logic import Spec
from cohortbridge.analytics.computations.models import computation_values, computations
from cohortbridge.analytics.ingest.models import events
from cohortbridge.db import dialect as sql

c, v, e = computations.c, computation_values.c, events.c


async def insert_computation(conn: AsyncConnection, row: dict[str, Any]) -> int:
    result = await conn.execute(insert(computations).values(**row).returning(c.pk))
    return int(result.scalar_one())


async def get(conn: AsyncConnection, project_id: int, computation_id: str) -> RowMapping | None:
    query = select(computations).where(c.project_id == project_id, c.id == computation_id)
    return (await conn.execute(query)).mappings().first()


async def listing(conn: AsyncConnection, project_id: int) -> list[RowMapping]:
    query = select(computations).where(c.project_id == project_id).order_by(c.pk)
    return list((await conn.execute(query)).mappings())


async def due(conn: AsyncConnection, now: datetime) -> list[RowMapping]:
    query = select(computations).where(c.next_compute_at <= now).order_by(c.next_compute_at)
    return list((await conn.execute(query)).mappings())


async def due_one(conn: AsyncConnection, pk: int, now: datetime) -> RowMapping | None:
    query = select(computations).where(c.pk == pk, c.next_compute_at <= now)
    return (await conn.execute(query)).mappings().first()


async def mark_computed(conn: AsyncConnection, pk: int, at: datetime, then: datetime) -> None:
    await conn.execute(update(computations).where(c.pk == pk).values(
        computed_at=at, next_compute_at=then))  # fmt: skip


def _events_in(spec: Spec, scope: audience.Scope) -> list[Any]:
    wanted = d.EventCondition(spec.event_type, ">=", 1, None, spec.filters, spec.window)
    where = [e.project_id == scope.project_id, *audience.type_filter(spec.event_type, scope)]
    where += [audience.matches(e.event_properties, f, scope.dialect) for f in wanted.filters]
    return where + audience.window_of(e.time, spec.window, scope)


def _values(spec: Spec, scope: audience.Scope) -> Select[Any]:
    """(amplitude_id, value) for the users the spec gives a value."""
    where = _events_in(spec, scope)
    if spec.kind == "count":
        return select(e.amplitude_id, func.count()).where(*where).group_by(e.amplitude_id)
    assert spec.prop is not None
    if spec.kind == "aggregation":
        number = sql.json_number(scope.dialect, e.event_properties, spec.prop)
        functions = {"sum": func.sum(number), "min": func.min(number),
                     "max": func.max(number), "avg": func.avg(number)}  # fmt: skip
        aggregated = functions[spec.aggregate or "sum"]
        return select(e.amplitude_id, aggregated).where(*where).group_by(e.amplitude_id)
    member = sql.json_member(e.event_properties, spec.prop)
    first = spec.kind == "first"
    order = (e.time.asc(), e.id.asc()) if first else (e.time.desc(), e.id.desc())
    rank = over(func.row_number(), partition_by=e.amplitude_id, order_by=order)
    ranked = (
        select(e.amplitude_id, member.label("value"), rank.label("n"))
        .where(*where, member.is_not(None))
        .subquery()
    )
    return select(ranked.c.amplitude_id, ranked.c.value).where(ranked.c.n == 1)


async def compute(conn: AsyncConnection, pk: int, spec: Spec, scope: audience.Scope) -> int:
    """Replace the computation's values: every user active in the window gets one (a count of 0
    when they have none of the events); the number of users with a value."""
    await conn.execute(delete(computation_values).where(v.computation == pk))
    computed = _values(spec, scope).subquery()
    active = audience.performers(d.EventCondition("_active", ">=", 1, None, (), spec.window),
                                 scope).subquery()  # fmt: skip
    value: Any = list(computed.c)[1]
    if spec.kind == "count":
        value = func.coalesce(value, 0)
    if spec.kind in ("count", "aggregation"):
        value = _number_as_json(scope.dialect, value)
    rows = select(literal(pk), active.c.amplitude_id, value).select_from(
        active.outerjoin(computed, computed.c.amplitude_id == active.c.amplitude_id)
    )
    if spec.kind != "count":
        rows = rows.where(and_(computed.c.amplitude_id.is_not(None)))
    await conn.execute(
        insert(computation_values).from_select(["computation", "amplitude_id", "value"], rows)
    )
    # Counted, not read from rowcount: SQLAlchemy keeps INSERT rowcounts only on request.
    counted = select(func.count()).select_from(computation_values).where(v.computation == pk)
    return int((await conn.execute(counted)).scalar_one())


def _number_as_json(dialect: str, value: Any) -> Any:
    """A computed number in the JSON column: jsonb on PostgreSQL, JSON text on SQLite (first
    and last values are JSON members already)."""
    if dialect == "postgresql":
        return func.to_jsonb(value)
    return cast(value, Text())


async def values_for(
    conn: AsyncConnection, project_id: int, amplitude_id: int, ids: Sequence[str] | None
) -> dict[str, Any]:
    """Computation id → this user's value (None when the user has none)."""
    query = (
        select(c.id, v.value)
        .select_from(computations.outerjoin(computation_values, and_(
            v.computation == c.pk, v.amplitude_id == amplitude_id)))
        .where(c.project_id == project_id)
    )  # fmt: skip
    if ids is not None:
        query = query.where(c.id.in_(list(ids)))
    return {row[0]: row[1] for row in await conn.execute(query)}


async def by_public_id(conn: AsyncConnection, computation_id: str) -> RowMapping | None:
    query = select(computations).where(c.id == computation_id)
    return (await conn.execute(query)).mappings().first()
