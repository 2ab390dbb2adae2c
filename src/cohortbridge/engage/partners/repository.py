"""All SQL on partners, partner API keys and data import keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.db import bulk
from cohortbridge.db import dialect as d
from cohortbridge.db.unit import Executor
from cohortbridge.engage.partners.models import data_import_keys, partner_api_keys, partners


async def get_partner(conn: AsyncConnection, slug: str) -> RowMapping | None:
    query = select(partners).where(partners.c.slug == slug)
    return (await conn.execute(query)).mappings().first()


async def add_partner(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(d.insert_ignore(conn.dialect.name, partners, ["slug"]), row)


async def insert_partner_key(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(partner_api_keys.insert().values(**row))


async def revoke_partner_keys(
    conn: AsyncConnection, slug: str, at: datetime, keep_id: str | None = None
) -> int:
    t = partner_api_keys.c
    stmt = update(partner_api_keys).where(t.partner == slug, t.revoked_at.is_(None))
    if keep_id is not None:
        stmt = stmt.where(t.id != keep_id)
    return (await conn.execute(stmt.values(revoked_at=at))).rowcount


# Raw: every partner request reads both keys first (``Database.lookup``).
def partner_key_by_digest(ex: Executor, key_digest: str) -> dict[str, Any] | None:
    rows = bulk.fetch_sql(
        ex,
        "SELECT id, partner FROM partner_api_keys WHERE key_digest = {mark} AND revoked_at IS NULL",
        (key_digest,),
    )
    return {"id": rows[0][0], "partner": rows[0][1]} if rows else None


async def insert_import_key(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(data_import_keys.insert().values(**row))


def import_key_by_digest(ex: Executor, key_digest: str) -> dict[str, Any] | None:
    rows = bulk.fetch_sql(
        ex,
        "SELECT id, workspace_id, partner, last_used_at FROM data_import_keys "
        "WHERE key_digest = {mark} AND invalidated_at IS NULL",
        (key_digest,),
    )
    if not rows:
        return None
    key_id, workspace_id, partner, last_used_at = rows[0]
    return {"id": key_id, "workspace_id": workspace_id, "partner": partner,
            "last_used_at": bulk.read_time(last_used_at)}  # fmt: skip


async def list_import_keys(
    conn: AsyncConnection, workspace_id: str, partner: str
) -> list[RowMapping]:
    t = data_import_keys.c
    query = (
        select(data_import_keys)
        .where(t.workspace_id == workspace_id, t.partner == partner)
        .order_by(t.created_at)
    )
    return list((await conn.execute(query)).mappings())


async def invalidate_import_key(
    conn: AsyncConnection, workspace_id: str, partner: str, key_id: str, at: datetime
) -> int:
    t = data_import_keys.c
    stmt = (
        update(data_import_keys)
        .where(t.id == key_id, t.workspace_id == workspace_id, t.partner == partner)
        .where(t.invalidated_at.is_(None))
        .values(invalidated_at=at)
    )
    return (await conn.execute(stmt)).rowcount


def touch_import_key(ex: Executor, key_id: str, at: datetime) -> None:
    """Raw: runs inside the cohort import's unit of work (db/unit.py)."""
    bulk.run_sql(
        ex,
        "UPDATE data_import_keys SET last_used_at = {mark} WHERE id = {mark}",
        (bulk.write_time(ex.dialect, at), key_id),
    )
