"""All SQL on profiles, their identifiers and their event and purchase history."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, select, tuple_, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.db import dialect as d
from cohortbridge.engage.users.logic.identifiers import Alias
from cohortbridge.engage.users.models import (
    custom_events,
    profile_aliases,
    profile_devices,
    profile_event_days,
    profile_event_stats,
    profile_purchase_days,
    profile_purchase_stats,
    profiles,
    purchases,
)

STATE_COLUMNS = (
    "email", "phone", "first_name", "last_name", "gender", "dob", "country", "home_city",
    "language", "time_zone", "email_subscribe", "push_subscribe",
)  # fmt: skip
# SQLite accepts at most 32,766 bound parameters; stay far below for IN lists.
CHUNK = 900


def _chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def dialect_of(conn: AsyncConnection) -> str:
    return conn.dialect.name


async def ids_by_external_id(
    conn: AsyncConnection, workspace_id: str, external_ids: Sequence[str]
) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(external_ids):
        query = select(profiles.c.external_id, profiles.c.id).where(
            profiles.c.workspace_id == workspace_id, profiles.c.external_id.in_(chunk)
        )
        found.update({row[0]: row[1] for row in await conn.execute(query)})
    return found


async def ids_by_braze_id(
    conn: AsyncConnection, workspace_id: str, braze_ids: Sequence[str]
) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(braze_ids):
        query = select(profiles.c.braze_id, profiles.c.id).where(
            profiles.c.workspace_id == workspace_id, profiles.c.braze_id.in_(chunk)
        )
        found.update({row[0]: row[1] for row in await conn.execute(query)})
    return found


async def ids_by_alias(
    conn: AsyncConnection, workspace_id: str, aliases: Sequence[Alias]
) -> dict[Alias, int]:
    found: dict[Alias, int] = {}
    pa = profile_aliases.c
    for chunk in _chunks(aliases, CHUNK // 2):
        query = select(pa.alias_label, pa.alias_name, pa.profile_id).where(
            pa.workspace_id == workspace_id,
            tuple_(pa.alias_label, pa.alias_name).in_(list(chunk)),
        )
        found.update({(row[0], row[1]): row[2] for row in await conn.execute(query)})
    return found


async def candidates_by_contact(
    conn: AsyncConnection, workspace_id: str, kind: str, values: Sequence[str]
) -> list[RowMapping]:
    """Profiles holding any of these emails (or phones), for secondary-id lookups."""
    column = profiles.c[kind]
    rows: list[RowMapping] = []
    for chunk in _chunks(values):
        query = select(
            profiles.c.id, column.label("value"), profiles.c.external_id, profiles.c.updated_at
        ).where(profiles.c.workspace_id == workspace_id, column.in_(chunk))
        rows.extend((await conn.execute(query)).mappings())
    return rows


async def load_states(
    conn: AsyncConnection, ids: Sequence[int], *, lock: bool
) -> dict[int, RowMapping]:
    """Writable state of profiles; ``lock`` takes row locks (PostgreSQL) in id order."""
    out: dict[int, RowMapping] = {}
    cols = [profiles.c.id, profiles.c.standard, profiles.c.custom_attributes]
    cols += [profiles.c[name] for name in STATE_COLUMNS]
    for chunk in _chunks(sorted(ids)):
        query = select(*cols).where(profiles.c.id.in_(chunk)).order_by(profiles.c.id)
        if lock:
            query = query.with_for_update()
        out.update({row["id"]: row for row in (await conn.execute(query)).mappings()})
    return out


async def insert_profiles(conn: AsyncConnection, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert new profiles; an external id another writer took meanwhile is skipped.

    Returns ``{braze_id: id}`` of the rows actually inserted.
    """
    if not rows:
        return {}
    stmt = d.insert_ignore(dialect_of(conn), profiles, ["workspace_id", "external_id"])
    result = await conn.execute(stmt.returning(profiles.c.braze_id, profiles.c.id), rows)
    return {row[0]: row[1] for row in result}


async def update_states(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    values: dict[str, Any] = {name: bindparam(f"v_{name}") for name in rows[0] if name != "pid"}
    stmt = update(profiles).where(profiles.c.id == bindparam("pid")).values(**values)
    params = [
        {"pid": row["pid"], **{f"v_{k}": v for k, v in row.items() if k != "pid"}}
        for row in sorted(rows, key=lambda r: int(r["pid"]))
    ]
    await conn.execute(stmt, params)


async def insert_aliases(conn: AsyncConnection, rows: list[dict[str, Any]]) -> int:
    """Insert aliases whose (label, name) is free; returns how many were inserted."""
    if not rows:
        return 0
    stmt = d.insert_ignore(
        dialect_of(conn), profile_aliases, ["workspace_id", "alias_label", "alias_name"]
    )
    result = await conn.execute(stmt.returning(profile_aliases.c.profile_id), rows)
    return len(result.all())


async def alias_labels_of(conn: AsyncConnection, ids: Sequence[int]) -> set[tuple[int, str]]:
    pa = profile_aliases.c
    found: set[tuple[int, str]] = set()
    for chunk in _chunks(ids):
        query = select(pa.profile_id, pa.alias_label).where(pa.profile_id.in_(chunk))
        found.update((row[0], row[1]) for row in await conn.execute(query))
    return found


async def insert_events(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(custom_events.insert(), rows)


async def insert_purchases(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(purchases.insert(), rows)


async def add_event_stats(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect = dialect_of(conn)
    t = profile_event_stats
    stmt = d.upsert(
        dialect,
        t,
        ["profile_id", "name"],
        lambda ex: {
            "count": t.c.count + ex.count,
            "first_at": d.least(dialect, t.c.first_at, ex.first_at),
            "last_at": d.greatest(dialect, t.c.last_at, ex.last_at),
        },
    )
    await conn.execute(stmt, sorted(rows, key=lambda r: (r["profile_id"], r["name"])))


async def add_event_days(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    t = profile_event_days
    stmt = d.upsert(
        dialect_of(conn), t, ["profile_id", "name", "day"],
        lambda ex: {"count": t.c.count + ex.count},
    )  # fmt: skip
    await conn.execute(stmt, sorted(rows, key=lambda r: (r["profile_id"], r["name"], r["day"])))


async def add_purchase_stats(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect = dialect_of(conn)
    t = profile_purchase_stats
    stmt = d.upsert(
        dialect,
        t,
        ["profile_id", "product_id"],
        lambda ex: {
            "count": t.c.count + ex.count,
            "revenue": t.c.revenue + ex.revenue,
            "first_at": d.least(dialect, t.c.first_at, ex.first_at),
            "last_at": d.greatest(dialect, t.c.last_at, ex.last_at),
        },
    )
    await conn.execute(stmt, sorted(rows, key=lambda r: (r["profile_id"], r["product_id"])))


async def add_purchase_days(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    t = profile_purchase_days
    stmt = d.upsert(
        dialect_of(conn),
        t,
        ["profile_id", "product_id", "day"],
        lambda ex: {"count": t.c.count + ex.count, "revenue": t.c.revenue + ex.revenue},
    )
    await conn.execute(
        stmt, sorted(rows, key=lambda r: (r["profile_id"], r["product_id"], r["day"]))
    )


async def add_revenue(conn: AsyncConnection, amounts: dict[int, float]) -> None:
    if not amounts:
        return
    stmt = (
        update(profiles)
        .where(profiles.c.id == bindparam("pid"))
        .values(total_revenue=profiles.c.total_revenue + bindparam("amount"))
    )
    await conn.execute(
        stmt, [{"pid": pid, "amount": amount} for pid, amount in sorted(amounts.items())]
    )


async def delete_profiles(conn: AsyncConnection, ids: Sequence[int]) -> int:
    deleted = 0
    for chunk in _chunks(sorted(ids)):
        result = await conn.execute(delete(profiles).where(profiles.c.id.in_(chunk)))
        deleted += result.rowcount
    return deleted


async def devices_of(conn: AsyncConnection, ids: Sequence[int]) -> list[RowMapping]:
    rows: list[RowMapping] = []
    for chunk in _chunks(ids):
        query = select(profile_devices).where(profile_devices.c.profile_id.in_(chunk))
        rows.extend((await conn.execute(query)).mappings())
    return rows


async def full_profiles(conn: AsyncConnection, ids: Sequence[int]) -> list[RowMapping]:
    rows: list[RowMapping] = []
    for chunk in _chunks(sorted(ids)):
        query = select(profiles).where(profiles.c.id.in_(chunk)).order_by(profiles.c.id)
        rows.extend((await conn.execute(query)).mappings())
    return rows


async def aliases_of(conn: AsyncConnection, ids: Sequence[int]) -> list[RowMapping]:
    pa = profile_aliases.c
    rows: list[RowMapping] = []
    for chunk in _chunks(ids):
        query = (
            select(pa.profile_id, pa.alias_label, pa.alias_name)
            .where(pa.profile_id.in_(chunk))
            .order_by(pa.profile_id, pa.alias_label)
        )
        rows.extend((await conn.execute(query)).mappings())
    return rows


async def event_stats_of(conn: AsyncConnection, ids: Sequence[int]) -> list[RowMapping]:
    t = profile_event_stats.c
    rows: list[RowMapping] = []
    for chunk in _chunks(ids):
        query = select(profile_event_stats).where(t.profile_id.in_(chunk)).order_by(t.name)
        rows.extend((await conn.execute(query)).mappings())
    return rows


async def purchase_stats_of(conn: AsyncConnection, ids: Sequence[int]) -> list[RowMapping]:
    t = profile_purchase_stats.c
    rows: list[RowMapping] = []
    for chunk in _chunks(ids):
        query = select(profile_purchase_stats).where(t.profile_id.in_(chunk)).order_by(t.product_id)
        rows.extend((await conn.execute(query)).mappings())
    return rows


async def id_by_device(conn: AsyncConnection, workspace_id: str, device_id: str) -> int | None:
    query = select(profile_devices.c.profile_id).where(
        profile_devices.c.workspace_id == workspace_id, profile_devices.c.device_id == device_id
    )
    return (await conn.execute(query)).scalar_one_or_none()


async def ids_by_device(
    conn: AsyncConnection, workspace_id: str, device_ids: Sequence[str]
) -> dict[str, int]:
    found: dict[str, int] = {}
    pd = profile_devices.c
    for chunk in _chunks(device_ids):
        query = select(pd.device_id, pd.profile_id).where(
            pd.workspace_id == workspace_id, pd.device_id.in_(chunk)
        )
        found.update({row[0]: row[1] for row in await conn.execute(query)})
    return found


async def upsert_devices(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Attach devices (with their push tokens) to profiles; a known device moves to its new
    profile, as a token re-registered under another user does."""
    if not rows:
        return
    t = profile_devices
    stmt = d.upsert(
        dialect_of(conn),
        t,
        ["workspace_id", "device_id"],
        lambda ex: {
            "profile_id": ex.profile_id,
            "app_id": ex.app_id,
            "push_token": ex.push_token,
            "last_seen_at": ex.last_seen_at,
        },
    )
    await conn.execute(stmt, sorted(rows, key=lambda r: str(r["device_id"])))
