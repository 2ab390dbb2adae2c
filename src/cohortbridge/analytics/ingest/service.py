"""Ingestion: validated events → identity → user properties → stored events. Never commits.

One request is one transaction: its events are de-duplicated by insert_id, resolved to
Amplitude IDs in order (merging anonymous users into the user who logs in), stamped with the
user's properties at that moment, and written with a few set-based statements.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.identity import properties
from cohortbridge.analytics.identity import repository as identities
from cohortbridge.analytics.identity.logic import Resolver
from cohortbridge.analytics.ingest import repository as repo
from cohortbridge.analytics.ingest.logic.events import DEVICE_FIELDS, Event
from cohortbridge.analytics.projects import repository as projects
from cohortbridge.analytics.streams import service as streams

DEDUPE_WINDOW = timedelta(days=7)


@dataclass
class _User:
    """A user's state as the batch changes it."""

    user_id: str | None
    user_properties: dict[str, Any]
    device_properties: dict[str, Any]
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None
    last_active_at: datetime | None = None
    created_at: datetime | None = None
    new: bool = False
    merged_from: list[int] = field(default_factory=list)
    # As stored before this batch: streams that send users compare against it.
    initial_properties: dict[str, Any] = field(default_factory=dict)

    def saw(self, moment: datetime, active: bool) -> None:
        self.first_seen_at = min(self.first_seen_at or moment, moment)
        self.last_seen_at = max(self.last_seen_at or moment, moment)
        if active:
            self.last_active_at = max(self.last_active_at or moment, moment)

    def absorb(self, other: _User) -> None:
        """A merged anonymous user: its values fill what this user lacks."""
        self.user_properties = {**other.user_properties, **self.user_properties}
        self.device_properties = {**other.device_properties, **self.device_properties}
        for moment in (other.first_seen_at, other.last_seen_at):
            if moment is not None:
                self.saw(moment, active=False)
        if other.last_active_at is not None:
            self.saw(other.last_active_at, active=True)


def _deduplicated(events: list[Event], seen: set[tuple[str, str]]) -> list[Event]:
    kept: list[Event] = []
    for event in events:
        if event.insert_id is not None:
            key = (event.device_id, event.insert_id)
            if key in seen:
                continue
            seen.add(key)
        kept.append(event)
    return kept


async def _fresh(
    conn: AsyncConnection, project_id: int, events: list[Event], now: datetime
) -> list[Event]:
    pairs = [(e.device_id, e.insert_id) for e in events if e.insert_id is not None]
    seen = await repo.seen_inserts(conn, project_id, pairs, now - DEDUPE_WINDOW)
    return _deduplicated(events, seen)


async def _resolve(
    conn: AsyncConnection, project_id: int, events: list[Event]
) -> tuple[Resolver, list[int]]:
    user_ids = sorted({e.user_id for e in events if e.user_id is not None})
    device_ids = sorted({e.device_id for e in events})
    resolver = Resolver(await identities.known(conn, project_id, user_ids, device_ids))
    return resolver, [resolver.resolve(e.user_id, e.device_id) for e in events]


async def _users(
    conn: AsyncConnection, resolver: Resolver, provisional: list[int], now: datetime
) -> tuple[dict[int, _User], dict[int, int]]:
    """Every user the batch touches, new ones with their reserved ids; and provisional → real."""
    real = dict(zip(resolver.created, await identities.reserve(conn, len(resolver.created)),
                    strict=True))  # fmt: skip
    stored = [a for a in {*provisional, *resolver.merged, *resolver.merged.values()} if a > 0]
    loaded = await identities.states(conn, stored, lock=True)
    users: dict[int, _User] = {}
    for amplitude_id, state in loaded.items():
        users[amplitude_id] = _User(
            user_id=resolver.identified.get(amplitude_id, state["user_id"]),
            user_properties=state["user_properties"],
            device_properties=state["device_properties"], first_seen_at=state["first_seen_at"],
            last_seen_at=state["last_seen_at"], last_active_at=state["last_active_at"],
            created_at=state["created_at"], initial_properties=dict(state["user_properties"]),
        )  # fmt: skip
    for temporary, user_id in resolver.created.items():
        users[real[temporary]] = _User(user_id, {}, {}, created_at=now, new=True)
    return users, real


def _surviving(resolver: Resolver, real: dict[int, int], amplitude_id: int) -> int:
    final = resolver.final(amplitude_id)
    return real.get(final, final)


def _apply(
    user: _User, event: Event, *, inactive: set[str], counts_as_event: bool
) -> dict[str, Any]:
    """The event's effect on its user; returns the properties to stamp on the event."""
    if event.skip_user_properties:
        return event.user_properties
    if event.user_properties:
        user.user_properties = properties.apply(user.user_properties, event.user_properties)
    device = {k: event.data[k] for k in DEVICE_FIELDS if k in event.data}
    if device:
        # None resets a field (the Identify API's coupled fields).
        merged = {**user.device_properties, **device}
        user.device_properties = {k: v for k, v in merged.items() if v is not None}
    if counts_as_event:
        user.saw(event.time, active=event.event_type not in inactive)
    return user.user_properties


@dataclass(frozen=True)
class Batch:
    project_id: int
    events: list[Event]
    received_at: datetime
    # False for the Identify API: identifications change users but are not events.
    store_events: bool = True


async def ingest(conn: AsyncConnection, batch: Batch) -> int:
    """Apply the batch; the number of events stored (duplicates by insert_id are left out)."""
    now = batch.received_at
    events = (
        await _fresh(conn, batch.project_id, batch.events, now)
        if batch.store_events
        else (batch.events)
    )
    if not events:
        return 0
    resolver, provisional = await _resolve(conn, batch.project_id, events)
    users, real = await _users(conn, resolver, provisional, now)
    for merged, into in resolver.merged.items():
        source, target = real.get(merged, merged), _surviving(resolver, real, into)
        users[target].absorb(users.pop(source))
        users[target].merged_from.append(source)
    inactive = await projects.inactive_types(conn, batch.project_id)
    outbox = await _outbox(conn, batch)
    rows: list[tuple[Any, ...]] = []
    for event, temporary in zip(events, provisional, strict=True):
        amplitude_id = _surviving(resolver, real, temporary)
        counts = batch.store_events and not event.is_identify
        user = users[amplitude_id]
        stamped = _apply(user, event, inactive=inactive, counts_as_event=counts)
        if outbox is not None and counts:
            outbox.event(user_id=user.user_id, event_type=event.event_type, time=event.time,
                         event_props=event.event_properties, user_props=stamped)  # fmt: skip
        if batch.store_events:
            rows.append((batch.project_id, amplitude_id, event.event_type, event.time,
                         event.user_id, event.device_id, event.session_id, event.insert_id,
                         event.event_properties, stamped, event.data, now))  # fmt: skip
    await _write(conn, batch, resolver=resolver, real=real, users=users, rows=rows, events=events)
    if outbox is not None:
        if outbox.sends_users:
            for user in users.values():
                outbox.user(user_id=user.user_id, before=user.initial_properties,
                            after=user.user_properties)  # fmt: skip
        await outbox.write(conn)
    return len(rows)


async def _outbox(conn: AsyncConnection, batch: Batch) -> streams.Outbox | None:
    """The batch's share for the project's event streams, written in its transaction."""
    found = await streams.streams_of(conn, batch.project_id)
    return streams.Outbox(found, batch.received_at) if found else None


async def _write(
    conn: AsyncConnection, batch: Batch, *, resolver: Resolver, real: dict[int, int],
    users: dict[int, _User], rows: list[tuple[Any, ...]], events: list[Event],
) -> None:  # fmt: skip
    now = batch.received_at
    created = [(a, batch.project_id, u.user_id, u.user_properties, u.device_properties,
                u.first_seen_at, u.last_seen_at, u.last_active_at, now, now)
               for a, u in sorted(users.items()) if u.new]  # fmt: skip
    await identities.insert_users(conn, created)
    for amplitude_id, user in users.items():
        for merged in user.merged_from:
            if merged > 0 and not _was_new(merged, real):
                await identities.merge(conn, batch.project_id, merged, amplitude_id, now)
    await identities.update_users(conn, [
        (u.user_id, u.user_properties, u.device_properties, u.first_seen_at, u.last_seen_at,
         u.last_active_at, now, a)
        for a, u in sorted(users.items()) if not u.new
    ])  # fmt: skip
    latest: dict[str, datetime] = {}
    for event in events:
        latest[event.device_id] = max(latest.get(event.device_id, event.time), event.time)
    owners = {**resolver.known.device_owner, **resolver.devices}
    await identities.upsert_devices(conn, [
        (batch.project_id, device, _surviving(resolver, real, owners[device]), moment)
        for device, moment in latest.items()
    ])  # fmt: skip
    await repo.insert_events(conn, rows)
    await repo.record_inserts(conn, sorted({
        (batch.project_id, e.device_id, e.insert_id, now)
        for e in events if e.insert_id is not None and batch.store_events
    }))  # fmt: skip


def _was_new(amplitude_id: int, real: dict[int, int]) -> bool:
    return amplitude_id in real.values()
