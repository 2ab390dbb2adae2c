"""All SQL on projects and their event-type settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.projects.models import event_types, projects
from cohortbridge.db import dialect as d
from cohortbridge.kit.clock import as_utc


async def insert_project(conn: AsyncConnection, row: dict[str, Any]) -> int:
    result = await conn.execute(insert(projects).values(**row).returning(projects.c.id))
    return int(result.scalar_one())


async def by_name(conn: AsyncConnection, name: str) -> RowMapping | None:
    query = select(projects).where(projects.c.name == name)
    return (await conn.execute(query)).mappings().first()


async def by_id(conn: AsyncConnection, project_id: int) -> RowMapping | None:
    query = select(projects).where(projects.c.id == project_id)
    return (await conn.execute(query)).mappings().first()


async def by_api_key(conn: AsyncConnection, api_key: str) -> RowMapping | None:
    query = select(projects.c.id, projects.c.name).where(projects.c.api_key == api_key)
    return (await conn.execute(query)).mappings().first()


async def by_secret_digest(conn: AsyncConnection, digest: str) -> RowMapping | None:
    query = select(projects.c.id, projects.c.name).where(projects.c.secret_digest == digest)
    return (await conn.execute(query)).mappings().first()


async def all_projects(conn: AsyncConnection) -> list[RowMapping]:
    query = select(projects.c.id, projects.c.name, projects.c.api_key, projects.c.created_at)
    return list((await conn.execute(query.order_by(projects.c.id))).mappings())


async def inactive_types(conn: AsyncConnection, project_id: int) -> set[str]:
    e = event_types.c
    query = select(e.event_type).where(e.project_id == project_id, e.active.is_(False))
    return set((await conn.execute(query)).scalars())


async def activity_changed_at(conn: AsyncConnection, project_id: int) -> datetime | None:
    """When an event type of the project was last marked active or inactive."""
    e = event_types.c
    query = select(func.max(e.updated_at)).where(e.project_id == project_id)
    value = (await conn.execute(query)).scalar_one_or_none()
    return as_utc(value) if value is not None else None


async def set_activity(
    conn: AsyncConnection, project_id: int, event_type: str, active: bool, at: datetime
) -> None:
    stmt = d.upsert(
        conn.dialect.name, event_types, ["project_id", "event_type"],
        lambda excluded: {"active": excluded.active, "updated_at": excluded.updated_at},
    )  # fmt: skip
    await conn.execute(
        stmt, {"project_id": project_id, "event_type": event_type, "active": active,
               "updated_at": at},
    )  # fmt: skip
