"""All SQL on workspaces, apps and REST API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.db import bulk
from cohortbridge.db.unit import Executor
from cohortbridge.engage.workspaces.models import apps, rest_api_keys, workspaces


async def find_workspace(conn: AsyncConnection, ref: str) -> RowMapping | None:
    """A workspace by id or by name."""
    query = select(workspaces).where(or_(workspaces.c.id == ref, workspaces.c.name == ref))
    return (await conn.execute(query)).mappings().first()


async def insert_workspace(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(workspaces.insert().values(**row))


async def list_workspaces(conn: AsyncConnection) -> list[RowMapping]:
    query = select(workspaces).order_by(workspaces.c.created_at)
    return list((await conn.execute(query)).mappings())


async def insert_app(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(apps.insert().values(**row))


async def first_app(conn: AsyncConnection, workspace_id: str) -> RowMapping | None:
    query = select(apps).where(apps.c.workspace_id == workspace_id).order_by(apps.c.created_at)
    return (await conn.execute(query)).mappings().first()


async def insert_key(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(rest_api_keys.insert().values(**row))


def key_by_digest(ex: Executor, key_digest: str) -> dict[str, Any] | None:
    """Raw: every REST request reads it first (``Database.lookup``)."""
    rows = bulk.fetch_sql(
        ex,
        "SELECT id, workspace_id, permissions, last_seen_at, name FROM rest_api_keys "
        "WHERE key_digest = {mark}",
        (key_digest,),
    )
    if not rows:
        return None
    key_id, workspace_id, permissions, last_seen_at, name = rows[0]
    return {"id": key_id, "workspace_id": workspace_id, "name": name,
            "permissions": bulk.read_json(permissions),
            "last_seen_at": bulk.read_time(last_seen_at)}  # fmt: skip


async def list_keys(conn: AsyncConnection, workspace_id: str) -> list[RowMapping]:
    query = (
        select(rest_api_keys)
        .where(rest_api_keys.c.workspace_id == workspace_id)
        .order_by(rest_api_keys.c.created_at)
    )
    return list((await conn.execute(query)).mappings())


# Raw statements: these run inside write units of work (db/unit.py).
def touch_key(ex: Executor, key_id: str, at: datetime) -> None:
    bulk.run_sql(
        ex,
        "UPDATE rest_api_keys SET last_seen_at = {mark} WHERE id = {mark}",
        (bulk.write_time(ex.dialect, at), key_id),
    )


def app_ids(ex: Executor, workspace_id: str) -> set[str]:
    rows = bulk.fetch_sql(ex, "SELECT id FROM apps WHERE workspace_id = {mark}", (workspace_id,))
    return {row[0] for row in rows}


async def workspace_of_app(conn: AsyncConnection, app_id: str) -> str | None:
    query = select(apps.c.workspace_id).where(apps.c.id == app_id)
    value: str | None = (await conn.execute(query)).scalar_one_or_none()
    return value
