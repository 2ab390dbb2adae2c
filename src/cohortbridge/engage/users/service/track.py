"""POST /users/track: attributes, then events, then purchases (spec braze §3.3–§3.4)."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from cohortbridge.db.bulk import Bound
from cohortbridge.db.unit import Executor
from cohortbridge.engage.datapoints import service as datapoints
from cohortbridge.engage.errors import BrazeError, RetryTransaction
from cohortbridge.engage.users import repository as repo
from cohortbridge.engage.users.logic.attributes import ProfileState, apply_update
from cohortbridge.engage.users.logic.identifiers import Ident, Target
from cohortbridge.engage.users.logic.track import TrackPlan, TrackRejected, plan_track
from cohortbridge.engage.users.service.resolve import Key, find_ids
from cohortbridge.engage.workspaces import repository as workspace_repo
from cohortbridge.kit.clock import utcnow
from cohortbridge.kit.ids import object_id


@dataclass
class NewProfile:
    """A profile this request creates: rows refer to it by ``stand_in`` (a negative id)
    until it is inserted."""

    braze_id: str
    target: Target
    stand_in: int
    state: ProfileState = field(default_factory=ProfileState)


@dataclass
class Snapshot:
    """What a request's writes are computed from: the ids its identifiers address and the
    stored state of the profiles whose attributes it writes, as raw rows."""

    ids: dict[Key, int]
    states: list[Any]


@dataclass
class Writes:
    """Every row a request writes, computed from a ``Snapshot`` without the database."""

    new: dict[Key, NewProfile] = field(default_factory=dict)
    profiles: list[dict[str, Any]] = field(default_factory=list)
    aliases: list[dict[str, Any]] = field(default_factory=list)  # of the profiles created
    attribute_aliases: list[dict[str, Any]] = field(default_factory=list)
    states: list[dict[str, Any]] = field(default_factory=list)
    devices: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    event_stats: list[dict[str, Any]] = field(default_factory=list)
    event_days: list[dict[str, Any]] = field(default_factory=list)
    purchases: list[dict[str, Any]] = field(default_factory=list)
    purchase_stats: list[dict[str, Any]] = field(default_factory=list)
    purchase_days: list[dict[str, Any]] = field(default_factory=list)
    revenue: dict[int, float] = field(default_factory=dict)
    points: int = 0


@dataclass(frozen=True)
class Statements:
    """A request's ``Writes`` bound for the driver (``bind``): what is left to do in the
    write transaction is the driver's work."""

    new: dict[Key, NewProfile]
    profiles: Bound
    aliases: Bound  # of the profiles created: each must be inserted
    rest: tuple[Bound, ...]  # in the order they run
    points: int


@dataclass
class Batch:
    workspace_id: str
    now: datetime
    ids: dict[Key, int] = field(default_factory=dict)
    new: dict[Key, NewProfile] = field(default_factory=dict)
    states: dict[int, ProfileState] = field(default_factory=dict)
    # The stored state of existing profiles, to write back only the columns that change.
    stored: dict[int, dict[str, Any]] = field(default_factory=dict)
    # Existing profiles written to, with the standard columns their objects set.
    changed: dict[int, set[str]] = field(default_factory=dict)
    aliases: list[dict[str, Any]] = field(default_factory=list)

    def profile_id(self, target: Target) -> int | None:
        key = target.ident.key()
        if key in self.ids:
            return self.ids[key]
        created = self.new.get(key)
        return created.stand_in if created else None


@dataclass
class Draft:
    """A request's writes computed ahead of its write transaction (``draft``)."""

    plan: TrackPlan
    snapshot: Snapshot
    statements: Statements
    now: datetime


def prepare(payload: Any) -> TrackPlan:
    """Validate a request before any transaction opens: SQLite has one writer, and nothing
    that needs no database should keep it waiting."""
    try:
        return plan_track(payload, utcnow())
    except TrackRejected as rejected:
        extra = {"errors": rejected.errors} if rejected.errors is not None else None
        raise BrazeError(400, rejected.message, extra=extra) from rejected


def draft(ex: Executor, workspace_id: str, plan: TrackPlan) -> TrackPlan | Draft:
    """Read and compute a request's writes outside the write transaction (on SQLite, while
    another request holds the single writer); ``apply`` then only checks that what was read
    is unchanged and writes. A request with push tokens is left whole to ``apply``: its app
    check may reject objects."""
    if any(w.update.push_tokens for w in plan.attributes):
        return plan
    now = utcnow()
    snapshot = read(ex, workspace_id, plan, lock=False)
    statements = bind(ex.dialect, compute(snapshot, workspace_id, plan, now))
    return Draft(plan, snapshot, statements, now)


def apply(
    ex: Executor,
    workspace_id: str,
    prepared: TrackPlan | Draft,
    source: str = datapoints.USERS_TRACK,
) -> dict[str, Any]:
    """Write a validated request (or its ``draft``): a few set-based statements whatever its
    size, as one synchronous unit of work (db/unit.py)."""
    if isinstance(prepared, Draft):
        plan, now = prepared.plan, prepared.now
        snapshot = read(ex, workspace_id, plan, lock=True)
        if snapshot == prepared.snapshot:
            # Computed from the same reads, the writes would be the same: use the draft's.
            statements = prepared.statements
        else:
            statements = bind(ex.dialect, compute(snapshot, workspace_id, plan, now))
    else:
        plan, now = prepared, utcnow()
        _check_push_apps(ex, workspace_id, plan)
        snapshot = read(ex, workspace_id, plan, lock=True)
        statements = bind(ex.dialect, compute(snapshot, workspace_id, plan, now))
    write(ex, statements)
    datapoints.record(ex, workspace_id, now, source, statements.points)
    return plan.response()


def read(ex: Executor, workspace_id: str, plan: TrackPlan, *, lock: bool) -> Snapshot:
    """``lock`` takes row locks on PostgreSQL: concurrent requests on one profile must not
    lose writes."""
    idents = [t.ident for t in plan.targets()]
    external_ids = _all_external_ids(plan, idents)
    if external_ids is not None:
        rows = repo.states_by_external_id(ex, workspace_id, external_ids, lock=lock)
        return Snapshot({("external_id", r[0]): r[1] for r in rows}, [r[1:] for r in rows])
    ids = find_ids(ex, workspace_id, idents)
    existing = {ids[k] for w in plan.attributes if (k := w.target.ident.key()) in ids}
    return Snapshot(ids, repo.state_rows(ex, sorted(existing), lock=lock))


def _all_external_ids(plan: TrackPlan, idents: list[Ident]) -> list[str] | None:
    """The external ids of the common request, where every object names its profile by
    external id and each profile named gets attributes: its ids and states are one query."""
    named = {i.value for i in idents if i.kind == "external_id"}
    only_external_ids = len(set(idents)) == len(named)
    attributes_for_each = len({w.target.ident for w in plan.attributes}) == len(named)
    if not (only_external_ids and attributes_for_each):
        return None
    return [str(value) for value in named]


def compute(snapshot: Snapshot, workspace_id: str, plan: TrackPlan, now: datetime) -> Writes:
    """The rows of a request, from what it read (no database)."""
    batch = Batch(workspace_id, now, ids=snapshot.ids)
    writes = Writes()
    _plan_new_profiles(batch, plan)
    writes.points = _apply_attributes(batch, plan, repo.decode_states(snapshot.states))
    _new_profiles(batch, writes)
    writes.states = _state_rows(batch)
    writes.devices = _device_rows(batch, plan)
    writes.points += _event_rows(batch, plan, writes)
    writes.points += _purchase_rows(batch, plan, writes)
    return writes


def bind(dialect: str, writes: Writes) -> Statements:
    """``writes`` as statements for ``dialect``'s driver, in the order ``write`` runs them."""
    return Statements(
        new=writes.new,
        profiles=repo.bind_profiles(dialect, writes.profiles),
        aliases=repo.bind_aliases(dialect, writes.aliases),
        rest=(
            # Aliases written as attributes: a pair or label already taken is not applied
            # (spec §4).
            repo.bind_aliases(dialect, writes.attribute_aliases),
            *repo.bind_states(dialect, writes.states),
            repo.bind_devices(dialect, writes.devices),
            repo.bind_events(dialect, writes.events),
            repo.bind_event_stats(dialect, writes.event_stats),
            repo.bind_event_days(dialect, writes.event_days),
            repo.bind_purchases(dialect, writes.purchases),
            repo.bind_purchase_stats(dialect, writes.purchase_stats),
            repo.bind_purchase_days(dialect, writes.purchase_days),
            repo.bind_revenue(dialect, writes.revenue),
        ),
        points=writes.points,
    )


def write(ex: Executor, statements: Statements) -> None:
    """Insert the new profiles, give their rows the real ids (new rows: a draft's statements
    are used again if its transaction is retried), write the rest."""
    ids = _insert_new_profiles(ex, statements)
    aliases = statements.aliases.with_ids(ids)
    if len(aliases.execute(ex)) != len(aliases.rows):
        raise RetryTransaction("an alias was created concurrently")
    for bound in statements.rest:
        bound.with_ids(ids).execute(ex)


def _insert_new_profiles(ex: Executor, statements: Statements) -> dict[int, int]:
    """``{stand-in id: id}`` of the profiles created."""
    if not statements.profiles.rows:
        return {}
    inserted = repo.inserted_profiles(ex, statements.profiles)
    if len(inserted) != len(statements.profiles.rows):
        raise RetryTransaction("an external id was created concurrently")
    return {c.stand_in: inserted[c.braze_id] for c in statements.new.values()}


def _plan_new_profiles(batch: Batch, plan: TrackPlan) -> None:
    for target in plan.targets():
        key = target.ident.key()
        if key in batch.ids or key in batch.new or not target.create:
            continue
        created = NewProfile(object_id(), target, stand_in=-1 - len(batch.new))
        batch.new[key] = created
        kind, value = key
        if kind in ("email", "phone"):
            created.state.columns[kind] = value


def _apply_attributes(batch: Batch, plan: TrackPlan, loaded: dict[int, dict[str, Any]]) -> int:
    for pid, row in loaded.items():
        # The documents' text as stored, taken before updates change them in place.
        row["standard_json"] = row["standard_json"] or orjson.dumps(row["standard"])
        row["custom_json"] = row["custom_json"] or orjson.dumps(row["custom_attributes"])
        batch.stored[pid] = row
        batch.states[pid] = ProfileState(
            columns={name: row[name] for name in repo.STATE_COLUMNS},
            document=row["standard"],
            custom=row["custom_attributes"],
        )
    points = 0
    for write in plan.attributes:
        key = write.target.ident.key()
        if key in batch.ids and write.target.only_new:
            continue
        if key in batch.ids and batch.ids[key] in batch.states:
            state = batch.states[batch.ids[key]]
            batch.changed.setdefault(batch.ids[key], set()).update(write.update.columns)
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


def _device_rows(batch: Batch, plan: TrackPlan) -> list[dict[str, Any]]:
    rows = {}
    for write in plan.attributes:
        if not write.update.push_tokens:
            continue
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
    return list(rows.values())


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


def _new_profiles(batch: Batch, writes: Writes) -> None:
    """The rows of the profiles created and of their aliases (by stand-in id)."""
    writes.new = batch.new
    writes.profiles = [_new_row(batch, c) for c in batch.new.values()]
    for key, created in batch.new.items():
        if key[0] == "user_alias":
            label, name = key[1]
            writes.aliases.append(
                {"workspace_id": batch.workspace_id, "alias_label": label,
                 "alias_name": name, "profile_id": created.stand_in}
            )  # fmt: skip
    for item in batch.aliases:
        new = batch.new.get(item["key"])
        pid = new.stand_in if new else batch.ids.get(item["key"])
        label, name = item["alias"]
        writes.attribute_aliases.append({"workspace_id": batch.workspace_id,
                                         "alias_label": label, "alias_name": name,
                                         "profile_id": pid})  # fmt: skip


def _state_rows(batch: Batch) -> list[dict[str, Any]]:
    return [
        {
            "pid": pid,
            **_changes(batch.stored[pid], batch.states[pid], batch.changed[pid]),
            "updated_at": batch.now,
        }
        for pid in sorted(batch.changed)
    ]


def _changes(stored: dict[str, Any], state: ProfileState, written: set[str]) -> dict[str, Any]:
    """The state columns whose value differs from the stored one (of those ``written``: the
    others keep the stored value).

    Writing only those leaves the indexes on the others (email, phone) untouched.
    """
    changed: dict[str, Any] = {}
    for name in written:
        value = state.columns.get(name)
        old = stored[name]
        if type(value) is not type(old) or value != old:
            changed[name] = value
    # Compared as JSON text: 1, 1.0 and true are equal in Python, not in the document.
    if orjson.dumps(state.document) != stored["standard_json"]:
        changed["standard"] = state.document
    if orjson.dumps(state.custom) != stored["custom_json"]:
        changed["custom_attributes"] = state.custom
    return changed


def _event_rows(batch: Batch, plan: TrackPlan, writes: Writes) -> int:
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
    writes.events = raw
    writes.event_stats = [
        {"profile_id": k[0], "name": k[1], "count": v["count"], "first_at": v["first_at"],
         "last_at": v["last_at"]} for k, v in stats.items()
    ]  # fmt: skip
    writes.event_days = [
        {"profile_id": k[0], "name": k[1], "day": k[2], "count": n} for k, n in days.items()
    ]
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


def _purchase_rows(batch: Batch, plan: TrackPlan, writes: Writes) -> int:
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
    writes.purchases = raw
    writes.purchase_stats = [
        {"profile_id": k[0], "product_id": k[1], **v} for k, v in stats.items()
    ]
    writes.purchase_days = [
        {"profile_id": k[0], "product_id": k[1], "day": k[2], "count": v["count"],
         "revenue": v["revenue"]} for k, v in days.items()
    ]  # fmt: skip
    writes.revenue = dict(revenue)
    return sum(row["quantity"] for row in raw)
