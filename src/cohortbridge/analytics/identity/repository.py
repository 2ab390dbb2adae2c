"""All SQL on users, devices and merges."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.identity.logic import Known
from cohortbridge.analytics.identity.models import devices, merges, users
from cohortbridge.analytics.ingest.models import events
from cohortbridge.db import bulk
from cohortbridge.db import dialect as d
from cohortbridge.db.bulk import BulkInsert, BulkUpdate
from cohortbridge.db.unit import call

STATE = ("user_id", "user_properties", "device_properties", "first_seen_at", "last_seen_at",
         "last_active_at", "created_at")  # fmt: skip


async def known(
    conn: AsyncConnection, project_id: int, user_ids: Sequence[str], device_ids: Sequence[str]
) -> Known:
    """What the database knows of a batch's user ids and device ids."""
    found = Known()
    for user_id, amplitude_id in await call(
        conn,
        bulk.fetch_in,
        "SELECT user_id, amplitude_id FROM users WHERE project_id = {mark} "
        "AND user_id IN ({marks})",
        (project_id,),
        list(user_ids),
    ):
        found.by_user[user_id] = amplitude_id
        found.user_of[amplitude_id] = user_id
    for device_id, amplitude_id, user_id in await call(
        conn,
        bulk.fetch_in,
        "SELECT d.device_id, d.amplitude_id, u.user_id FROM devices d "
        "JOIN users u ON u.amplitude_id = d.amplitude_id "
        "WHERE d.project_id = {mark} AND d.device_id IN ({marks})",
        (project_id,),
        list(device_ids),
    ):
        found.device_owner[device_id] = amplitude_id
        found.user_of[amplitude_id] = user_id
    return found


def _document(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    return dict(orjson.loads(value) if isinstance(value, str | bytes) else value)


async def states(
    conn: AsyncConnection, amplitude_ids: Sequence[int], *, lock: bool
) -> dict[int, dict[str, Any]]:
    """The writable state of users; ``lock`` takes their row locks (PostgreSQL) in id order."""
    ids = sorted(set(amplitude_ids))
    suffix = (
        " ORDER BY amplitude_id FOR UPDATE" if lock and conn.dialect.name == "postgresql" else ""
    )
    rows = await call(
        conn,
        bulk.fetch_in,
        "SELECT amplitude_id, " + ", ".join(STATE) + " FROM users "
        "WHERE amplitude_id IN ({marks})" + suffix,
        (),
        ids,
    )
    found: dict[int, dict[str, Any]] = {}
    for row in rows:
        state = dict(zip(STATE, row[1:], strict=True))
        state["user_properties"] = _document(state["user_properties"])
        state["device_properties"] = _document(state["device_properties"])
        for key in ("first_seen_at", "last_seen_at", "last_active_at", "created_at"):
            state[key] = bulk.read_time(state[key])
        found[int(row[0])] = state
    return found


_INSERT_USERS = BulkInsert(
    users,
    ("amplitude_id", "project_id", "user_id", "user_properties", "device_properties",
     "first_seen_at", "last_seen_at", "last_active_at", "created_at", "updated_at"),
)  # fmt: skip
_UPDATE_USERS = BulkUpdate(
    users,
    ("user_id", "user_properties", "device_properties", "first_seen_at", "last_seen_at",
     "last_active_at", "updated_at"),
    key="amplitude_id",
)  # fmt: skip


async def reserve(conn: AsyncConnection, count: int) -> list[int]:
    # Merged users' rows are deleted; their ids stay in ``merges`` and are never given again.
    return await d.reserve_ids(
        conn, "users", "amplitude_id", count, retired=("merges", "merged_id")
    )


async def insert_users(conn: AsyncConnection, rows: Sequence[Sequence[Any]]) -> None:
    await call(conn, _INSERT_USERS.execute, rows)


async def update_users(conn: AsyncConnection, rows: Sequence[Sequence[Any]]) -> None:
    await call(conn, _UPDATE_USERS.execute, rows)


_UPSERT_DEVICES = BulkInsert(
    devices,
    ("project_id", "device_id", "amplitude_id", "last_seen_at"),
    conflict=("project_id", "device_id"),
    updates=lambda dialect: {
        "amplitude_id": "excluded.amplitude_id",
        "last_seen_at": bulk.greatest(dialect, "devices.last_seen_at", "excluded.last_seen_at"),
    },
)


async def upsert_devices(conn: AsyncConnection, rows: Sequence[Sequence[Any]]) -> None:
    # Sorted, so concurrent writers lock device rows in the same order.
    await call(conn, _UPSERT_DEVICES.execute, sorted(rows, key=lambda row: row[1]))


async def merge(
    conn: AsyncConnection, project_id: int, merged_id: int, into_id: int, at: datetime
) -> None:
    """Move an anonymous user's events and devices to the surviving user and remember it."""
    await conn.execute(
        update(events).where(events.c.amplitude_id == merged_id).values(amplitude_id=into_id)
    )
    await conn.execute(
        update(devices).where(devices.c.amplitude_id == merged_id).values(amplitude_id=into_id)
    )
    await conn.execute(update(merges).where(merges.c.into_id == merged_id).values(into_id=into_id))
    await conn.execute(
        merges.insert().values(project_id=project_id, merged_id=merged_id, into_id=into_id,
                               merged_at=at)
    )  # fmt: skip
    await conn.execute(delete(users).where(users.c.amplitude_id == merged_id))


async def find_user(
    conn: AsyncConnection, project_id: int, *, user_id: str | None, device_id: str | None
) -> dict[str, Any] | None:
    """A user by user_id, else by the device's current owner."""
    rows: list[Any] = []
    if user_id is not None:
        rows = await call(
            conn,
            bulk.fetch_sql,
            "SELECT amplitude_id FROM users WHERE project_id = {mark} AND user_id = {mark}",
            (project_id, user_id),
        )
    if not rows and device_id is not None:
        rows = await call(
            conn,
            bulk.fetch_sql,
            "SELECT amplitude_id FROM devices WHERE project_id = {mark} AND device_id = {mark}",
            (project_id, device_id),
        )
    if not rows:
        return None
    amplitude_id = int(rows[0][0])
    state = (await states(conn, [amplitude_id], lock=False)).get(amplitude_id)
    if state is None:
        return None
    return {"amplitude_id": amplitude_id, **state}


async def last_device(conn: AsyncConnection, amplitude_id: int) -> str | None:
    rows = await call(
        conn,
        bulk.fetch_sql,
        "SELECT device_id FROM devices WHERE amplitude_id = {mark} "
        "ORDER BY last_seen_at DESC LIMIT 1",
        (amplitude_id,),
    )
    return str(rows[0][0]) if rows else None
