"""POST /users/track: attributes, then events, then purchases (spec braze §3.3–§3.4)."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from cohortbridge.db.unit import Executor
from cohortbridge.engage.datapoints import service as datapoints
from cohortbridge.engage.errors import BrazeError, RetryTransaction
from cohortbridge.engage.users import repository as repo
from cohortbridge.engage.users.logic.attributes import ProfileState, apply_update
from cohortbridge.engage.users.logic.identifiers import Target
from cohortbridge.engage.users.logic.track import TrackPlan, TrackRejected, plan_track
from cohortbridge.engage.users.service.resolve import Key, find_ids
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
    # The stored state of existing profiles, to write back only the columns that change.
    stored: dict[int, dict[str, Any]] = field(default_factory=dict)
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


def apply(
    ex: Executor, workspace_id: str, plan: TrackPlan, source: str = datapoints.USERS_TRACK
) -> dict[str, Any]:
    """Write a validated request: a few set-based statements whatever its size, as one
    synchronous unit of work (db/unit.py)."""
    now = utcnow()
    _check_push_apps(ex, workspace_id, plan)
    batch = Batch(workspace_id, now)
    batch.ids = find_ids(ex, workspace_id, [t.ident for t in plan.targets()])
    _plan_new_profiles(batch, plan)
    points = _apply_attributes(ex, batch, plan)
    _insert_new_profiles(ex, batch)
    _write_states(ex, batch)
    _write_devices(ex, batch, plan)
    points += _write_events(ex, batch, plan)
    points += _write_purchases(ex, batch, plan)
    datapoints.record(ex, workspace_id, now, source, points)
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


def _apply_attributes(ex: Executor, batch: Batch, plan: TrackPlan) -> int:
    existing = {
        batch.ids[w.target.ident.key()]
        for w in plan.attributes
        if w.target.ident.key() in batch.ids
    }
    # Row locks on PostgreSQL: concurrent requests on one profile must not lose writes.
    loaded = repo.load_states(ex, sorted(existing), lock=True)
    for pid, row in loaded.items():
        # Serialized now: updates may change nested values of the documents in place.
        batch.stored[pid] = {
            **{name: row[name] for name in repo.STATE_COLUMNS},
            "standard": orjson.dumps(row["standard"]),
            "custom_attributes": orjson.dumps(row["custom_attributes"]),
        }
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


def _check_push_apps(ex: Executor, workspace_id: str, plan: TrackPlan) -> None:
    """A push token must name an app of the workspace (``BAD_PUSH_TOKEN_APP_ID``)."""
    if not any(w.update.push_tokens for w in plan.attributes):
        return
    known = workspace_repo.app_ids(ex, workspace_id)
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


def _write_devices(ex: Executor, batch: Batch, plan: TrackPlan) -> None:
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
    repo.upsert_devices(ex, list(rows.values()))


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


def _insert_new_profiles(ex: Executor, batch: Batch) -> None:
    if not batch.new:
        _insert_aliases(ex, batch, [])
        return
    inserted = repo.insert_profiles(ex, [_new_row(batch, c) for c in batch.new.values()])
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
    _insert_aliases(ex, batch, new_aliases)


def _insert_aliases(ex: Executor, batch: Batch, new_aliases: list[dict[str, Any]]) -> None:
    if repo.insert_aliases(ex, new_aliases) != len(new_aliases):
        raise RetryTransaction("an alias was created concurrently")
    # Aliases written as attributes: a pair or label already taken is not applied (spec §4).
    extra = []
    for item in batch.aliases:
        created = batch.new.get(item["key"])
        pid = created.id if created else batch.ids.get(item["key"])
        label, name = item["alias"]
        extra.append({"workspace_id": batch.workspace_id, "alias_label": label,
                      "alias_name": name, "profile_id": pid})  # fmt: skip
    repo.insert_aliases(ex, extra)


def _write_states(ex: Executor, batch: Batch) -> None:
    rows = [
        {"pid": pid, **_changes(batch.stored[pid], batch.states[pid]), "updated_at": batch.now}
        for pid in sorted(batch.changed)
    ]
    repo.update_states(ex, rows)


def _changes(stored: dict[str, Any], state: ProfileState) -> dict[str, Any]:
    """The state columns whose value differs from the stored one.

    Writing only those leaves the indexes on the others (email, phone) untouched.
    """
    changed: dict[str, Any] = {}
    for name in repo.STATE_COLUMNS:
        value = state.columns.get(name)
        old = stored[name]
        if type(value) is not type(old) or value != old:
            changed[name] = value
    # Compared as JSON text: 1, 1.0 and true are equal in Python, not in the document.
    if orjson.dumps(state.document) != stored["standard"]:
        changed["standard"] = state.document
    if orjson.dumps(state.custom) != stored["custom_attributes"]:
        changed["custom_attributes"] = state.custom
    return changed


def _write_events(ex: Executor, batch: Batch, plan: TrackPlan) -> int:
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
    repo.insert_events(ex, raw)
    repo.add_event_stats(
        ex,
        [{"profile_id": k[0], "name": k[1], "count": v["count"], "first_at": v["first_at"],
          "last_at": v["last_at"]} for k, v in stats.items()],
    )  # fmt: skip
    repo.add_event_days(
        ex, [{"profile_id": k[0], "name": k[1], "day": k[2], "count": n} for k, n in days.items()]
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


def _write_purchases(ex: Executor, batch: Batch, plan: TrackPlan) -> int:
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
    repo.insert_purchases(ex, raw)
    repo.add_purchase_stats(
        ex, [{"profile_id": k[0], "product_id": k[1], **v} for k, v in stats.items()]
    )
    repo.add_purchase_days(
        ex,
        [{"profile_id": k[0], "product_id": k[1], "day": k[2], "count": v["count"],
          "revenue": v["revenue"]} for k, v in days.items()],
    )  # fmt: skip
    repo.add_revenue(ex, revenue)
    return sum(row["quantity"] for row in raw)
