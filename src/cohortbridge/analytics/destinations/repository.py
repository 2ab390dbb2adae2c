"""All SQL of the Braze destination: destinations, syncs, their plans, state and history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Text,
    case,
    cast,
    column,
    delete,
    func,
    insert,
    literal,
    null,
    select,
    table,
    tuple_,
    union,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.cohorts.models import cohort_changes, cohort_members
from cohortbridge.analytics.destinations.models import (
    cohort_syncs,
    destinations,
    sync_pending,
    sync_run_users,
    sync_runs,
    sync_state,
)
from cohortbridge.analytics.identity.models import devices, users
from cohortbridge.db import dialect as d
from cohortbridge.db import leases
from cohortbridge.db.bulk import BulkInsert
from cohortbridge.db.unit import call

DESIRED = "cb_sync_desired"
_desired = table(DESIRED, column("amplitude_id"), column("kind"), column("value"))
AMONG = "cb_sync_among"
_among = table(AMONG, column("amplitude_id"))
s, p = cohort_syncs.c, sync_pending.c


async def insert_destination(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(destinations).values(**row))


async def destination(conn: AsyncConnection, destination_id: str) -> RowMapping | None:
    query = select(destinations).where(destinations.c.id == destination_id)
    return (await conn.execute(query)).mappings().first()


async def update_destination(
    conn: AsyncConnection, destination_id: str, values: dict[str, Any]
) -> None:
    await conn.execute(
        update(destinations).where(destinations.c.id == destination_id).values(**values)
    )


async def insert_sync(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(cohort_syncs).values(**row))


async def sync(conn: AsyncConnection, sync_id: str) -> RowMapping | None:
    return (await conn.execute(select(cohort_syncs).where(s.id == sync_id))).mappings().first()


async def update_sync(conn: AsyncConnection, sync_id: str, values: dict[str, Any]) -> None:
    await conn.execute(update(cohort_syncs).where(s.id == sync_id).values(**values))


async def due(conn: AsyncConnection, now: datetime, *, queue: bool = False) -> list[str]:
    return await leases.due(conn, cohort_syncs, now, queue=queue)


async def lease(
    conn: AsyncConnection, sync_id: str, now: datetime, until: datetime, *,
    owner: str | None = None, due_only: bool = False,
) -> bool:  # fmt: skip
    return await leases.lease(
        conn, cohort_syncs, sync_id, now, until, owner=owner, due_only=due_only
    )


def _identifier(kind: str) -> Any:
    """The SQL value of one identifier mapping for a member (NULL when the user has none)."""
    if kind in ("user_id",) or kind.startswith("alias:"):
        return users.c.user_id
    if kind == "device_id":
        return (
            select(devices.c.device_id)
            .where(devices.c.amplitude_id == cohort_members.c.amplitude_id)
            .order_by(devices.c.last_seen_at.desc())
            .limit(1)
            .scalar_subquery()
        )
    return None


def changed_since(cohort_pk: int, project_id: int, version: int, since: datetime) -> Any:
    """The users whose place in a sync may differ from a run that saw ``version`` of the
    cohort at ``since``: who entered or left after that version, and members written since
    (an identifier may have changed: a user id, a newer device, a property)."""
    k, m = cohort_changes.c, cohort_members.c
    members = select(m.amplitude_id).where(m.cohort == cohort_pk).scalar_subquery()
    return union(
        select(k.amplitude_id).where(k.cohort == cohort_pk, k.version > version),
        select(users.c.amplitude_id).where(
            users.c.project_id == project_id, users.c.updated_at >= since,
            users.c.amplitude_id.in_(members),
        ),
    )  # fmt: skip


async def plan(
    conn: AsyncConnection, sync_id: str, cohort_pk: int, identifiers: Sequence[str],
    among: Any = None,
) -> dict[str, int]:  # fmt: skip
    """Write the run's plan to ``sync_pending``: what engage must gain and lose so that it holds
    exactly the cohort, given what it acknowledged so far. Counts of removes, adds, skipped.

    With ``among`` (a query of amplitude ids, from ``changed_since``) only those users are
    planned: everyone else is held by engage as the last run left them."""
    dialect = conn.dialect.name
    if among is not None:
        await d.fresh_id_table(conn, AMONG)
        await conn.execute(insert(_among).from_select(["amplitude_id"], among))
    await d.fresh_id_table(conn, DESIRED, ", kind TEXT, value TEXT")
    values = []
    for kind in identifiers:
        value = _identifier(kind)
        if value is None:  # property:<name>
            value = d.json_as_string(dialect, users.c.user_properties, kind.split(":", 1)[1])
        values.append((kind, value))
    kind_of = case(*((v.is_not(None), literal(k)) for k, v in values), else_=null())
    chosen = (
        func.coalesce(*(cast(v, Text()) for _k, v in values))
        if len(values) > 1
        else cast(values[0][1], Text())
    )
    members = (
        select(cohort_members.c.amplitude_id, kind_of, chosen)
        .select_from(cohort_members.outerjoin(
            users, users.c.amplitude_id == cohort_members.c.amplitude_id))
        .where(cohort_members.c.cohort == cohort_pk)
    )  # fmt: skip
    if among is not None:
        members = members.where(cohort_members.c.amplitude_id.in_(
            select(_among.c.amplitude_id).scalar_subquery()))  # fmt: skip
    await conn.execute(insert(_desired).from_select(["amplitude_id", "kind", "value"], members))
    await conn.execute(delete(sync_pending).where(p.sync == sync_id))
    mark = "?" if dialect == "sqlite" else "%s"
    # Driven by the candidates when there are: a lookup each, not a scan of what engage holds.
    source = (f"{AMONG} a JOIN sync_state t ON t.amplitude_id = a.amplitude_id"
              if among is not None else "sync_state t")  # fmt: skip
    await conn.exec_driver_sql(_PLAN.format(m=mark, desired=DESIRED, source=source),
                               (sync_id, sync_id, sync_id))  # fmt: skip
    counts = await conn.exec_driver_sql(
        f"SELECT SUM(CASE WHEN remove THEN 1 ELSE 0 END), COUNT(*) FROM sync_pending "
        f"WHERE sync = {mark}", (sync_id,),
    )  # fmt: skip
    row: Any = counts.one()
    removes, total = row[0], row[1]
    skipped = await conn.exec_driver_sql(f"SELECT COUNT(*) FROM {DESIRED} WHERE kind IS NULL")
    return {"removes": int(removes or 0), "adds": int(total or 0) - int(removes or 0),
            "skipped": int(skipped.scalar_one())}  # fmt: skip


# Removals first (what engage holds that the cohort no longer does, or holds under another
# identifier), then additions, each in Amplitude ID order.
_PLAN = (
    "INSERT INTO sync_pending (sync, seq, amplitude_id, kind, value, remove) "
    "SELECT {m}, ROW_NUMBER() OVER (ORDER BY x.remove DESC, x.amplitude_id), x.amplitude_id, "
    "x.kind, x.value, x.remove FROM ("
    "SELECT t.amplitude_id, t.kind, t.value, TRUE AS remove FROM {source} "
    "WHERE t.sync = {m} AND NOT EXISTS (SELECT 1 FROM {desired} w WHERE "
    "w.amplitude_id = t.amplitude_id AND w.kind = t.kind AND w.value = t.value) "
    "UNION ALL "
    "SELECT w.amplitude_id, w.kind, w.value, FALSE AS remove FROM {desired} w "
    "WHERE w.kind IS NOT NULL AND NOT EXISTS (SELECT 1 FROM sync_state t WHERE t.sync = {m} "
    "AND t.amplitude_id = w.amplitude_id AND t.kind = w.kind AND t.value = w.value)) x"
)


async def unresolved(conn: AsyncConnection) -> list[int]:
    """Members of the plan just made that have no mapped identifier."""
    result = await conn.exec_driver_sql(f"SELECT amplitude_id FROM {DESIRED} WHERE kind IS NULL")
    return [int(row[0]) for row in result.all()]


async def pending(
    conn: AsyncConnection, sync_id: str, after_seq: int, limit: int
) -> list[RowMapping]:
    query = (
        select(sync_pending)
        .where(p.sync == sync_id, p.seq > after_seq)
        .order_by(p.seq)
        .limit(limit)
    )
    return list((await conn.execute(query)).mappings())


_HOLD = BulkInsert(
    sync_state,
    ("sync", "amplitude_id", "kind", "value"),
    conflict=("sync", "amplitude_id"),
    updates=lambda _dialect: {"kind": "excluded.kind", "value": "excluded.value"},
)
_HISTORY = BulkInsert(
    sync_run_users,
    ("run", "amplitude_id", "operation", "kind", "value", "skip_reason"),
    conflict=("run", "amplitude_id", "operation"),
)


async def acknowledge(
    conn: AsyncConnection, sync_id: str, rows: Sequence[RowMapping], run_id: int | None
) -> None:
    """Engage took these changes: record them as held (or gone) and drop them from the plan."""
    # A removal takes away the identifier it names only: four batches are in flight, and the
    # addition of the user's new identifier may be acknowledged first.
    removed = [(r["amplitude_id"], r["kind"], r["value"]) for r in rows if r["remove"]]
    if removed:
        await _forget_held(conn, sync_id, removed)
    # Multi-row upserts (an identifier change is a removal and an addition of one user: the
    # addition comes later in the plan and wins). Measured: DELETE + INSERT per batch were
    # most of the acknowledgements' time.
    added = sorted({r["amplitude_id"]: (sync_id, r["amplitude_id"], r["kind"], r["value"])
                    for r in rows if not r["remove"]}.values(), key=lambda row: row[1])  # fmt: skip
    await call(conn, _HOLD.execute, added)
    if run_id is not None and rows:
        await call(conn, _HISTORY.execute, [
            (run_id, r["amplitude_id"], "remove" if r["remove"] else "add", r["kind"],
             r["value"], None) for r in rows])  # fmt: skip


# PostgreSQL may plan a row-value IN list of 1,000 triples, or a join to arrays, as a scan of
# every row of the sync (0.4-2.3 s per batch), depending on how fresh its statistics are. The
# primary key's ``amplitude_id = ANY(…)`` keeps it to 1,000 index lookups whatever they say;
# the triples then only filter those rows.
_FORGET_PG = (
    "DELETE FROM sync_state t WHERE t.sync = %(sync)s AND t.amplitude_id = ANY(%(ids)s::BIGINT[]) "
    "AND (t.amplitude_id, t.kind, t.value) IN "
    "(SELECT * FROM unnest(%(ids)s::BIGINT[], %(kinds)s::TEXT[], %(values)s::TEXT[]))"
)


async def _forget_held(
    conn: AsyncConnection, sync_id: str, removed: Sequence[tuple[int, str, str]]
) -> None:
    if conn.dialect.name == "postgresql":
        ids, kinds, values = (list(column) for column in zip(*removed, strict=True))
        params = {"sync": sync_id, "ids": ids, "kinds": kinds, "values": values}
        await conn.exec_driver_sql(_FORGET_PG, params)
        return
    t = sync_state.c
    held = tuple_(t.amplitude_id, t.kind, t.value)
    await conn.execute(delete(sync_state).where(t.sync == sync_id, held.in_(removed)))


async def forget_plan(conn: AsyncConnection, sync_id: str) -> None:
    """The run is over: its plan goes (acknowledged batches are in ``sync_state``; the next run
    plans again from there)."""
    await conn.execute(delete(sync_pending).where(p.sync == sync_id))


async def record_skipped(
    conn: AsyncConnection, run_id: int, amplitude_ids: Sequence[int], reason: str
) -> None:
    if amplitude_ids:
        await conn.execute(insert(sync_run_users), [
            {"run": run_id, "amplitude_id": a, "operation": "add", "kind": None, "value": None,
             "skip_reason": reason} for a in amplitude_ids])  # fmt: skip


async def held(conn: AsyncConnection, sync_id: str) -> dict[int, tuple[str, str]]:
    t = sync_state.c
    query = select(t.amplitude_id, t.kind, t.value).where(t.sync == sync_id)
    return {int(a): (k, v) for a, k, v in await conn.execute(query)}


async def start_run(conn: AsyncConnection, row: dict[str, Any]) -> int:
    result = await conn.execute(insert(sync_runs).values(**row).returning(sync_runs.c.id))
    return int(result.scalar_one())


async def interrupt_runs(conn: AsyncConnection, sync_id: str, now: datetime) -> None:
    await leases.interrupt_runs(conn, sync_runs, sync_id, now)


async def finish_run(conn: AsyncConnection, run_id: int, values: dict[str, Any]) -> None:
    await conn.execute(update(sync_runs).where(sync_runs.c.id == run_id).values(**values))


async def latest_run(conn: AsyncConnection, sync_id: str) -> RowMapping | None:
    r = sync_runs.c
    query = select(sync_runs).where(r.sync == sync_id).order_by(r.id.desc()).limit(1)
    return (await conn.execute(query)).mappings().first()


async def runs(conn: AsyncConnection, sync_id: str, since: datetime) -> list[RowMapping]:
    r = sync_runs.c
    query = (
        select(sync_runs)
        .where(r.sync == sync_id, r.started_at >= since)
        .order_by(r.started_at.desc(), r.id.desc())
    )
    return list((await conn.execute(query)).mappings())


async def run_users(conn: AsyncConnection, run_id: int) -> list[RowMapping]:
    k = sync_run_users.c
    query = select(sync_run_users).where(k.run == run_id).order_by(k.amplitude_id)
    return list((await conn.execute(query)).mappings())


async def forget_runs(conn: AsyncConnection, before: datetime) -> None:
    """Sync history is kept 14 days."""
    await conn.execute(delete(sync_runs).where(sync_runs.c.started_at < before))
