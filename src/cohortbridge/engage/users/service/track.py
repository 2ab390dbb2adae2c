"""POST /users/track: attributes, then events, then purchases (spec braze §3.3–§3.4)."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.engage.datapoints import service as datapoints
from cohortbridge.engage.errors import BrazeError, RetryTransaction
from cohortbridge.engage.users import repository as repo
from cohortbridge.engage.users.logic.attributes import ProfileState, apply_update
from cohortbridge.engage.users.logic.identifiers import Target
from cohortbridge.engage.users.logic.track import TrackPlan, TrackRejected, plan_track
from cohortbridge.engage.users.service.resolve import Key, existing_ids
from cohortbridge.engage.workspaces import repository as workspace_repo
from cohortbridge.kit.clock import utcnow
from cohortbridge.kit.ids import object_id


@dataclass
class NewProfile:
    """A profile this request creates; inserted once its attributes are final."""

    braze_id: str
    target: Target
    state: ProfileState = field(default_factory=ProfileState)
    id: int | None = None


@dataclass
class Batch:
    workspace_id: str
    now: datetime
    ids: dict[Key, int] = field(default_factory=dict)
    new: dict[Key, NewProfile] = field(default_factory=dict)
    states: dict[int, ProfileState] = field(default_factory=dict)
    changed: set[int] = field(default_factory=set)
    aliases: list[dict[str, Any]] = field(default_factory=list)

    def profile_id(self, target: Target) -> int | None:
        key = target.ident.key()
        if key in self.ids:
            return self.ids[key]
        created = self.new.get(key)
        return created.id if created else None


def prepare(payload: Any) -> TrackPlan:
    """Validate a request before any transaction opens: SQLite has one writer, and nothing
    that needs no database should keep it waiting."""
    try:
        return plan_track(payload, utcnow())
    except TrackRejected as rejected:
        extra = {"errors": rejected.errors} if rejected.errors is not None else None
        raise BrazeError(400, rejected.message, extra=extra) from rejected


async def track(conn: AsyncConnection, workspace_id: str, payload: Any) -> dict[str, Any]:
    return await apply(conn, workspace_id, prepare(payload))


async def apply(conn: AsyncConnection, workspace_id: str, plan: TrackPlan) -> dict[str, Any]:
    """Write a validated request: a few set-based statements whatever its size."""
    now = utcnow()
    await _check_push_apps(conn, workspace_id, plan)
    batch = Batch(workspace_id, now)
    batch.ids = await existing_ids(conn, workspace_id, [t.ident for t in plan.targets()])
    _plan_new_profiles(batch, plan)
    points = await _apply_attributes(conn, batch, plan)
    await _insert_new_profiles(conn, batch)
    await _write_states(conn, batch)
    await _write_devices(conn, batch, plan)
    points += await _write_events(conn, batch, plan)
    points += await _write_purchases(conn, batch, plan)
    await datapoints.record(conn, workspace_id, now, datapoints.USERS_TRACK, points)
    return plan.response()


def _plan_new_profiles(batch: Batch, plan: TrackPlan) -> None:
    for target in plan.targets():
        key = target.ident.key()
        if key in batch.ids or key in batch.new or not target.create:
            continue
        batch.new[key] = NewProfile(braze_id=object_id(), target=target)
        kind, value = key
        if kind in ("email", "phone"):
            batch.new[key].state.columns[kind] = value


async def _apply_attributes(conn: AsyncConnection, batch: Batch, plan: TrackPlan) -> int:
    existing = {
        batch.ids[w.target.ident.key()]
        for w in plan.attributes
        if w.target.ident.key() in batch.ids
    }
    # Row locks on PostgreSQL: concurrent requests on one profile must not lose writes.
    loaded = await repo.load_states(conn, sorted(existing), lock=True)
    for pid, row in loaded.items():
        batch.states[pid] = ProfileState(
            columns={name: row[name] for name in repo.STATE_COLUMNS},
            document=dict(row["standard"] or {}),
            custom=dict(row["custom_attributes"] or {}),
        )
    points = 0
    for write in plan.attributes:
        key = write.target.ident.key()
        if key in batch.ids and write.target.only_new:
            continue
        if key in batch.ids and batch.ids[key] in batch.states:
            state = batch.states[batch.ids[key]]
            batch.changed.add(batch.ids[key])
        elif key in batch.new:
            state = batch.new[key].state
        else:
            continue  # update-only object for a profile that does not exist
        apply_update(state, write.update)
        points += write.update.datapoints
        if write.update.alias is not None:
            batch.aliases.append({"key": key, "alias": write.update.alias})
    return points


async def _check_push_apps(conn: AsyncConnection, workspace_id: str, plan: TrackPlan) -> None:
    """A push token must name an app of the workspace (``BAD_PUSH_TOKEN_APP_ID``)."""
    if not any(w.update.push_tokens for w in plan.attributes):
        return
    known = await workspace_repo.app_ids(conn, workspace_id)
    rejected = {
        w.index: "BAD_PUSH_TOKEN_APP_ID"
        for w in plan.attributes
        if any(token.app_id not in known for token in w.update.push_tokens)
    }
    if rejected:
        try:
            plan.reject_attributes(rejected)
        except TrackRejected as error:
            raise BrazeError(400, error.message, extra={"errors": error.errors}) from error


async def _write_devices(conn: AsyncConnection, batch: Batch, plan: TrackPlan) -> None:
    rows = {}
    for write in plan.attributes:
        key = write.target.ident.key()
        if key in batch.ids and write.target.only_new:
            continue
        pid = batch.profile_id(write.target)
        for token in write.update.push_tokens if pid is not None else []:
            rows[token.device_id] = {
                "workspace_id": batch.workspace_id, "device_id": token.device_id,
                "profile_id": pid, "app_id": token.app_id, "push_token": token.token,
                "created_at": batch.now, "last_seen_at": batch.now,
            }  # fmt: skip
    await repo.upsert_devices(conn, list(rows.values()))


def new_profile_row(
    workspace_id: str, braze_id: str, external_id: str | None, state: ProfileState, now: datetime
) -> dict[str, Any]:
    """The row of a profile about to be created, with its attributes already applied."""
    return {
        "workspace_id": workspace_id,
        "braze_id": braze_id,
        "external_id": external_id,
        **{name: state.columns.get(name) for name in repo.STATE_COLUMNS},
        "standard": state.document,
        "custom_attributes": state.custom,
        "random_bucket": random.randrange(10000),
        "total_revenue": 0.0,
        "created_at": now,
        "updated_at": now,
    }


def _new_row(batch: Batch, created: NewProfile) -> dict[str, Any]:
    kind, value = created.target.ident.key()
    external_id = value if kind == "external_id" and isinstance(value, str) else None
    return new_profile_row(
        batch.workspace_id, created.braze_id, external_id, created.state, batch.now
    )


async def _insert_new_profiles(conn: AsyncConnection, batch: Batch) -> None:
    if not batch.new:
        await _insert_aliases(conn, batch, [])
        return
    inserted = await repo.insert_profiles(conn, [_new_row(batch, c) for c in batch.new.values()])
    if len(inserted) != len(batch.new):
        raise RetryTransaction("an external id was created concurrently")
    new_aliases = []
    for key, created in batch.new.items():
        created.id = inserted[created.braze_id]
        if key[0] == "user_alias":
            label, name = key[1]
            new_aliases.append(
                {"workspace_id": batch.workspace_id, "alias_label": label,
                 "alias_name": name, "profile_id": created.id}
            )  # fmt: skip
    await _insert_aliases(conn, batch, new_aliases)


async def _insert_aliases(
    conn: AsyncConnection, batch: Batch, new_aliases: list[dict[str, Any]]
) -> None:
    if await repo.insert_aliases(conn, new_aliases) != len(new_aliases):
        raise RetryTransaction("an alias was created concurrently")
    # Aliases written as attributes: a pair or label already taken is not applied (spec §4).
    extra = []
    for item in batch.aliases:
        created = batch.new.get(item["key"])
        pid = created.id if created else batch.ids.get(item["key"])
        label, name = item["alias"]
        extra.append({"workspace_id": batch.workspace_id, "alias_label": label,
                      "alias_name": name, "profile_id": pid})  # fmt: skip
    await repo.insert_aliases(conn, extra)


async def _write_states(conn: AsyncConnection, batch: Batch) -> None:
    rows = []
    for pid in sorted(batch.changed):
        state = batch.states[pid]
        rows.append(
            {
                "pid": pid,
                **{name: state.columns.get(name) for name in repo.STATE_COLUMNS},
                "standard": state.document,
                "custom_attributes": state.custom,
                "updated_at": batch.now,
            }
        )
    await repo.update_states(conn, rows)


async def _write_events(conn: AsyncConnection, batch: Batch, plan: TrackPlan) -> int:
    raw: list[dict[str, Any]] = []
    stats: dict[tuple[int, str], dict[str, Any]] = {}
    days: dict[tuple[int, str, Any], int] = defaultdict(int)
    for event in plan.events:
        pid = batch.profile_id(event.target)
        if pid is None:
            continue
        raw.append(
            {"workspace_id": batch.workspace_id, "profile_id": pid, "name": event.name,
             "time": event.time, "app_id": event.app_id, "properties": event.properties}
        )  # fmt: skip
        _fold(stats, (pid, event.name), event.time, 1)
        days[(pid, event.name, event.time.date())] += 1
    await repo.insert_events(conn, raw)
    await repo.add_event_stats(
        conn,
        [{"profile_id": k[0], "name": k[1], "count": v["count"], "first_at": v["first_at"],
          "last_at": v["last_at"]} for k, v in stats.items()],
    )  # fmt: skip
    await repo.add_event_days(
        conn, [{"profile_id": k[0], "name": k[1], "day": k[2], "count": n} for k, n in days.items()]
    )
    return len(raw)


def _fold(
    stats: dict[Any, dict[str, Any]], key: Any, at: datetime, count: int, revenue: float = 0.0
) -> None:
    entry = stats.get(key)
    if entry is None:
        stats[key] = {"count": count, "first_at": at, "last_at": at, "revenue": revenue}
        return
    entry["count"] += count
    entry["revenue"] += revenue
    entry["first_at"] = min(entry["first_at"], at)
    entry["last_at"] = max(entry["last_at"], at)


async def _write_purchases(conn: AsyncConnection, batch: Batch, plan: TrackPlan) -> int:
    raw: list[dict[str, Any]] = []
    stats: dict[tuple[int, str], dict[str, Any]] = {}
    days: dict[tuple[int, str, Any], dict[str, Any]] = {}
    revenue: dict[int, float] = defaultdict(float)
    for p in plan.purchases:
        pid = batch.profile_id(p.target)
        if pid is None:
            continue
        amount = p.price * p.quantity
        raw.append({"workspace_id": batch.workspace_id, "profile_id": pid,
                    "product_id": p.product_id, "currency": p.currency, "price": p.price,
                    "quantity": p.quantity, "time": p.time, "app_id": p.app_id,
                    "properties": p.properties})  # fmt: skip
        # Quantity X counts as X purchases of quantity 1 (B-PUR).
        _fold(stats, (pid, p.product_id), p.time, p.quantity, amount)
        _fold(days, (pid, p.product_id, p.time.date()), p.time, p.quantity, amount)
        revenue[pid] += amount
    await repo.insert_purchases(conn, raw)
    await repo.add_purchase_stats(
        conn, [{"profile_id": k[0], "product_id": k[1], **v} for k, v in stats.items()]
    )
    await repo.add_purchase_days(
        conn,
        [{"profile_id": k[0], "product_id": k[1], "day": k[2], "count": v["count"],
          "revenue": v["revenue"]} for k, v in days.items()],
    )  # fmt: skip
    await repo.add_revenue(conn, revenue)
    return sum(row["quantity"] for row in raw)
