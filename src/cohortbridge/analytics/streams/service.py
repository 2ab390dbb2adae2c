"""Event streaming to Braze (spec amplitude §4.2): streams, the outbox ingestion writes, and
the forwarder that drains it.

Ingestion writes outbox rows in the transaction that accepts the events, so every accepted
event that a stream takes is forwarded at least once, across restarts and outages. The
forwarder holds rows with a lease, sends them, and settles each row in one transaction with
the answer: acknowledged rows leave, rejected rows stay dead with the reason, failed rows wait
for their next attempt. A response that was lost after engage applied it is the one source of
duplicates: its rows are sent again when the lease ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.destinations import repository as destinations
from cohortbridge.analytics.destinations import service as destination_service
from cohortbridge.analytics.streams import logic
from cohortbridge.analytics.streams import repository as repo
from cohortbridge.analytics.streams.braze import TrackClient, Tracked, TrackFailed
from cohortbridge.db.engine import Database
from cohortbridge.kit.clock import as_utc, utcnow
from cohortbridge.kit.ids import short_id

# Longer than a round can take (four requests, three tries each, within the client's timeout):
# a row is sent again only when its forwarder died, never while it still waits for an answer.
LEASE = timedelta(minutes=5)
HISTORY = timedelta(days=14)
# (rows acknowledged: their enqueue times, when engage acknowledged them)
OnAck = Callable[[list[datetime], datetime], None]


async def create_stream(
    conn: AsyncConnection, *, destination_id: str, name: str | None, config: Mapping[str, Any]
) -> dict[str, Any]:
    destination = await destination_service.streaming_destination(conn, destination_id)
    now = utcnow()
    stream_id = short_id()
    await repo.insert_stream(conn, {
        "id": stream_id, "project_id": destination["project_id"], "destination": destination_id,
        "name": name or f"Event stream to {destination['rest_endpoint']}",
        "config": logic.parse_config(config), "enabled": True, "created_at": now,
        "updated_at": now,
    })  # fmt: skip
    return {"stream_id": stream_id}


async def set_enabled(conn: AsyncConnection, stream_id: str, enabled: bool) -> None:
    if await repo.stream(conn, stream_id) is None:
        raise LookupError(f"no stream {stream_id!r}")
    await repo.update_stream(conn, stream_id, {"enabled": enabled, "updated_at": utcnow()})


async def streams_of(conn: AsyncConnection, project_id: int) -> list[logic.Stream]:
    rows = await repo.enabled_for(conn, project_id)
    return [logic.stream_of(r["id"], r["app_id"], r["config"]) for r in rows]


@dataclass
class Outbox:
    """What one ingested batch gives its project's streams; written with the batch."""

    streams: list[logic.Stream]
    now: datetime
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def event(
        self, *, user_id: str | None, event_type: str, time: datetime,
        event_props: Mapping[str, Any], user_props: Mapping[str, Any],
    ) -> None:  # fmt: skip
        for stream in self.streams:
            if not logic.takes(stream, event_type, event_props, user_props):
                continue
            body = logic.event_object(stream, user_id=user_id, event_type=event_type,
                                      time=time, event_props=event_props,
                                      user_props=user_props)  # fmt: skip
            if body is not None:
                self.rows.append((stream.id, "events", body, self.now, 0, self.now))

    def user(
        self, *, user_id: str | None, before: Mapping[str, Any], after: Mapping[str, Any]
    ) -> None:
        for stream in self.streams:
            body = logic.user_object(stream, user_id=user_id, before=before, after=after)
            if body is not None:
                self.rows.append((stream.id, "attributes", body, self.now, 0, self.now))

    @property
    def sends_users(self) -> bool:
        return any(s.send_users for s in self.streams)

    async def write(self, conn: AsyncConnection) -> None:
        if self.rows:
            await repo.enqueue(conn, self.rows)


@dataclass
class Forwarded:
    forwarded: int = 0
    rejected: int = 0
    failed: int = 0
    dead: int = 0
    requests: int = 0

    def add(self, other: Forwarded) -> None:
        for name in ("forwarded", "rejected", "failed", "dead", "requests"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _rejections(request: logic.Request, answer: Tracked) -> dict[int, str]:
    """Outbox id → the reason engage gave for refusing that object."""
    reasons = dict.fromkeys(request.rows.values(), "rejected") if answer.none_valid else {}
    for error in answer.errors:
        index = error.get("index")
        row_id = request.rows.get((str(error.get("input_array")), index)) if isinstance(
            index, int) else None  # fmt: skip
        if row_id is not None:
            reasons[row_id] = str(error.get("type") or "rejected")
    return reasons


@dataclass
class _Settlement:
    acked: list[int] = field(default_factory=list)
    dead: list[tuple[int, str]] = field(default_factory=list)
    exhausted: list[tuple[int, str]] = field(default_factory=list)
    postponed: dict[datetime, list[int]] = field(default_factory=dict)
    errors: dict[datetime, str] = field(default_factory=dict)
    retried: int = 0


def _settle(
    requests: list[logic.Request], outcomes: list[Tracked | BaseException],
    attempts: dict[int, int], now: datetime,
) -> _Settlement:  # fmt: skip
    out = _Settlement()
    for request, outcome in zip(requests, outcomes, strict=True):
        ids = list(request.rows.values())
        if isinstance(outcome, Tracked):
            out.retried += outcome.retries
            reasons = _rejections(request, outcome)
            out.dead.extend(reasons.items())
            out.acked.extend(i for i in ids if i not in reasons)
            continue
        error = str(outcome)
        for row_id in ids:
            when = logic.next_attempt(attempts[row_id] + 1, now)
            if when is None:
                out.exhausted.append((row_id, f"gave up after {logic.ATTEMPTS} attempts: {error}"))
            else:
                out.postponed.setdefault(when, []).append(row_id)
                out.errors[when] = error
    return out


async def _send(client: TrackClient, request: logic.Request, slots: asyncio.Semaphore) -> Tracked:
    async with slots:
        return await client.track(request.body)


async def _round(
    db: Database, stream_id: str, client: TrackClient, now: datetime, on_ack: OnAck | None
) -> Forwarded | None:
    """Claim, send and settle one round: up to sixteen requests, four in flight all along;
    None when nothing was due."""
    async with db.write_turn(), db.transaction() as conn:
        rows = await repo.claim(conn, stream_id, now, now + LEASE, logic.CLAIM)
    if not rows:
        return None
    requests = logic.requests([(r["id"], r["kind"], r["payload"]) for r in rows])
    slots = asyncio.Semaphore(logic.PARALLEL)
    gathered = await asyncio.gather(*(_send(client, r, slots) for r in requests),
                                    return_exceptions=True)  # fmt: skip
    for outcome in gathered:
        if isinstance(outcome, BaseException) and not isinstance(outcome, TrackFailed):
            raise outcome  # a bug, not an answer: the rows' lease ends and they go again
    attempts = {r["id"]: int(r["attempts"]) for r in rows}
    done = utcnow()
    settled = _settle(requests, list(gathered), attempts, done)
    await _record(db, stream_id, rows, settled, done=done, requests=len(requests))
    if on_ack is not None and settled.acked:
        acked = set(settled.acked)
        on_ack([as_utc(r["enqueued_at"]) for r in rows if r["id"] in acked], done)
    failed = sum(len(ids) for ids in settled.postponed.values())
    return Forwarded(forwarded=len(settled.acked), rejected=len(settled.dead), failed=failed,
                     dead=len(settled.exhausted), requests=len(requests))  # fmt: skip


async def _record(
    db: Database, stream_id: str, rows: list[RowMapping], settled: _Settlement, *,
    done: datetime, requests: int,
) -> None:  # fmt: skip
    acked = set(settled.acked)
    latencies = [
        max(0, int((done - as_utc(r["enqueued_at"])).total_seconds() * 1000))
        for r in rows if r["id"] in acked
    ]  # fmt: skip
    async with db.write_turn(), db.transaction() as conn:
        await repo.acknowledge(conn, settled.acked)
        await repo.kill(conn, settled.dead, attempts=1)
        await repo.kill(conn, settled.exhausted, attempts=1)
        for when, ids in settled.postponed.items():
            await repo.postpone(conn, ids, when, settled.errors[when])
        await repo.add_stats(conn, stream_id, done.replace(second=0, microsecond=0), {
            "requests": requests, "forwarded": len(settled.acked),
            "rejected": len(settled.dead), "retried": settled.retried,
            "dead": len(settled.exhausted), "latency_ms_sum": sum(latencies),
            "latency_ms_max": max(latencies, default=0),
        })  # fmt: skip


async def _client(db: Database, stream_id: str, http: httpx.AsyncClient) -> TrackClient | None:
    async with db.read() as conn:
        found = await repo.stream(conn, stream_id)
        destination = await destinations.destination(conn, found["destination"]) if found else None
    if found is None or destination is None or not destination["rest_api_key"]:
        return None
    return TrackClient(destination["rest_endpoint"], destination["rest_api_key"], http)


async def forward_stream(
    db: Database, stream_id: str, http: httpx.AsyncClient, *, now: datetime | None = None,
    on_ack: OnAck | None = None, client: TrackClient | None = None,
    budget_s: float | None = None,
) -> Forwarded:  # fmt: skip
    """Drain one stream's due rows; with ``budget_s``, stop after the round that passes it (a
    queued job must end for its worker to stop, however fast events keep coming)."""
    total = Forwarded()
    client = client or await _client(db, stream_id, http)
    if client is None:
        return total
    deadline = None if budget_s is None else time.monotonic() + budget_s
    while (result := await _round(db, stream_id, client, now or utcnow(), on_ack)) is not None:
        total.add(result)
        if deadline is not None and time.monotonic() >= deadline:
            break
    return total


async def forward(
    db: Database, http: httpx.AsyncClient, *, now: datetime | None = None,
    on_ack: OnAck | None = None,
) -> Forwarded:  # fmt: skip
    """``streams.forward``: drain every stream with due rows, a round of each in turn, so that
    one busy stream does not hold the others back."""
    total = Forwarded()
    clients: dict[str, TrackClient | None] = {}
    while True:
        async with db.read() as conn:
            found = await repo.streams_with_work(conn, now or utcnow())
        # A stream whose destination lost its key waits (its rows too) until it has one again.
        busy = [s for s in found if clients.get(s, True) is not None]
        if not busy:
            return total
        while busy:  # rounds in turn until each of these streams ran dry, then look again
            for stream_id in list(busy):
                if stream_id not in clients:
                    clients[stream_id] = await _client(db, stream_id, http)
                client = clients[stream_id]
                result = None
                if client is not None:
                    result = await _round(db, stream_id, client, now or utcnow(), on_ack)
                if result is None:
                    busy.remove(stream_id)
                else:
                    total.add(result)


async def prune(db: Database, now: datetime | None = None) -> None:
    async with db.write_turn(), db.transaction() as conn:
        await repo.prune(conn, (now or utcnow()) - HISTORY)


async def history(conn: AsyncConnection, stream_id: str, since: datetime) -> dict[str, Any]:
    """Per-minute delivery counts, the backlog and the latest dead rows."""
    if await repo.stream(conn, stream_id) is None:
        raise LookupError(f"no stream {stream_id!r}")
    minutes = [
        {"minute": as_utc(r["minute"]).isoformat(), "requests": r["requests"],
         "forwarded": r["forwarded"], "rejected": r["rejected"], "retried": r["retried"],
         "dead": r["dead"], "latency_ms_avg": (r["latency_ms_sum"] // r["forwarded"]
                                               if r["forwarded"] else None),
         "latency_ms_max": r["latency_ms_max"]}
        for r in await repo.stats(conn, stream_id, since)
    ]  # fmt: skip
    dead = [
        {"id": r["id"], "kind": r["kind"], "payload": r["payload"], "attempts": r["attempts"],
         "enqueued_at": as_utc(r["enqueued_at"]).isoformat(), "error": r["error"]}
        for r in await repo.dead_rows(conn, stream_id, 20)
    ]  # fmt: skip
    return {"stream_id": stream_id, **await repo.backlog(conn, stream_id), "minutes": minutes,
            "dead_rows": dead}  # fmt: skip
