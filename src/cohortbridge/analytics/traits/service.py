"""User property and computation syncs to Braze (spec amplitude §4.3): each value becomes a
custom attribute of the same name, for users active in the last 90 days, creating users
engage does not have. After the first run only values that changed since engage last took
them are sent, so no data point is spent on an unchanged value.

A run plans in one read, then sends four requests of 75 attributes objects at a time and
records each acknowledged request in its own transaction: a run that stops loses nothing
engage took, and the next run sends what it did not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.computations import repository as computations
from cohortbridge.analytics.destinations import repository as destinations
from cohortbridge.analytics.destinations import service as destination_service
from cohortbridge.analytics.streams import logic as streams
from cohortbridge.analytics.streams.braze import TrackClient, Tracked, TrackFailed
from cohortbridge.analytics.traits import logic
from cohortbridge.analytics.traits import repository as repo
from cohortbridge.analytics.traits.models import trait_syncs
from cohortbridge.db import leases
from cohortbridge.db.engine import Database
from cohortbridge.db.leases import Claim
from cohortbridge.kit.clock import utcnow
from cohortbridge.kit.ids import short_id

LEASE = timedelta(minutes=15)
HISTORY = timedelta(days=14)
RETRY_FAILED_AFTER = timedelta(minutes=5)
Progress = Callable[[int, int], None]


async def create_sync(
    conn: AsyncConnection, *, destination_id: str, cadence: str, identifier: dict[str, Any],
    user_property: str | None = None, computation_id: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    if (user_property is None) == (computation_id is None):
        raise logic.InvalidTraitSync("sync either a user property or a computation")
    destination = await destination_service.streaming_destination(conn, destination_id)
    if computation_id is not None:
        found = await computations.get(conn, destination["project_id"], computation_id)
        if found is None:
            raise LookupError(f"no computation {computation_id!r} in the destination's project")
        source, name, attribute = "computation", computation_id, found["name"]
    else:
        assert user_property is not None
        if not user_property.strip():
            raise logic.InvalidTraitSync("name the user property to sync")
        source, name, attribute = "property", user_property, user_property
    try:
        mapping = streams.identifier(identifier).as_json()
    except streams.InvalidStream as error:
        raise logic.InvalidTraitSync(str(error)) from error
    now = utcnow()
    sync_id = short_id()
    await repo.insert_sync(conn, {
        "id": sync_id, "project_id": destination["project_id"], "destination": destination_id,
        "source": source, "source_name": name, "attribute": attribute, "identifier": mapping,
        "cadence": logic.cadence(cadence), "enabled": True, "next_run_at": now,
        "created_at": now,
    })  # fmt: skip
    return {"sync_id": sync_id, "attribute": attribute}


@dataclass
class TraitRun:
    sync_id: str
    status: str
    candidates: int = 0
    sent: int = 0
    unchanged: int = 0
    skipped: int = 0
    rejected: int = 0
    error: str | None = None


@dataclass
class _Plan:
    sync: RowMapping
    destination: RowMapping
    run_id: int
    planned: list[logic.Planned] = field(default_factory=list)
    result: TraitRun | None = None


async def _claim(db: Database, sync_id: str, now: datetime, claim: Claim) -> bool:
    async with db.write_turn(), db.transaction() as conn:
        return await repo.lease(conn, sync_id, now, now + LEASE, owner=claim.owner,
                                due_only=claim.due_only)  # fmt: skip


async def _computation_pk(conn: AsyncConnection, sync: RowMapping) -> int | None:
    if sync["source"] != "computation":
        return None
    found = await computations.get(conn, sync["project_id"], sync["source_name"])
    if found is None:
        raise LookupError(f"computation {sync['source_name']!r} was deleted")
    return int(found["pk"])


async def _plan(conn: AsyncConnection, sync: RowMapping, now: datetime) -> tuple[
    list[logic.Planned], TraitRun]:  # fmt: skip
    ident = streams.identifier(sync["identifier"])
    pk = await _computation_pk(conn, sync)
    result = TraitRun(sync["id"], "running")
    planned: list[logic.Planned] = []
    after, since = 0, now - logic.ACTIVE_WINDOW
    while True:
        page = await repo.active_users(conn, sync["project_id"], since, after=after,
                                       limit=logic.PAGE, computation_pk=pk)  # fmt: skip
        if not page:
            return planned, result
        after = page[-1]["amplitude_id"]
        held = await repo.held(conn, sync["id"], [r["amplitude_id"] for r in page])
        for row in page:
            props = row["user_properties"] or {}
            value = row["computed"] if pk is not None else props.get(sync["source_name"])
            verdict = logic.decide(
                ident, sync["attribute"], amplitude_id=row["amplitude_id"],
                user_id=row["user_id"], user_properties=props, value=value,
                held=held.get(row["amplitude_id"]),
            )  # fmt: skip
            result.candidates += 1
            result.unchanged += verdict.unchanged
            result.skipped += verdict.skipped
            if verdict.planned is not None:
                planned.append(verdict.planned)


async def _prepare(db: Database, sync_id: str, now: datetime) -> _Plan:
    # Planned in a read: on SQLite the one writer is not held while a million users are read.
    async with db.read() as conn:
        sync = await repo.sync(conn, sync_id)
        assert sync is not None
        destination = await destinations.destination(conn, sync["destination"])
        assert destination is not None
        planned, result = await _plan(conn, sync, now)
    async with db.write_turn(), db.transaction() as conn:
        await repo.interrupt_runs(conn, sync_id, now)
        run_id = await repo.start_run(conn, {
            "sync": sync_id, "status": "running", "candidates": result.candidates, "sent": 0,
            "unchanged": result.unchanged, "skipped": result.skipped, "rejected": 0,
            "started_at": now,
        })  # fmt: skip
    return _Plan(sync, destination, run_id, planned, result)


async def _request(
    db: Database, plan: _Plan, client: TrackClient, chunk: list[logic.Planned]
) -> tuple[int, int]:
    """One request; (sent, rejected). Taken values are recorded at once."""
    answer: Tracked = await client.track({"attributes": [p.body for p in chunk]})
    refused = {e.get("index") for e in answer.errors if e.get("input_array") == "attributes"}
    if answer.none_valid:
        refused = set(range(len(chunk)))
    taken = [(p.amplitude_id, p.identifier, p.value) for i, p in enumerate(chunk)
             if i not in refused]  # fmt: skip
    async with db.write_turn(), db.transaction() as conn:
        await repo.remember(conn, plan.sync["id"], taken)
    return len(taken), len(chunk) - len(taken)


async def _send(db: Database, plan: _Plan, client: TrackClient, progress: Progress | None) -> None:
    assert plan.result is not None
    size = streams.MAX_OBJECTS
    chunks = [plan.planned[i : i + size] for i in range(0, len(plan.planned), size)]
    done = 0
    for start in range(0, len(chunks), streams.PARALLEL):
        round_ = chunks[start : start + streams.PARALLEL]
        outcomes = await asyncio.gather(*(_request(db, plan, client, c) for c in round_),
                                        return_exceptions=True)  # fmt: skip
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            plan.result.sent += outcome[0]
            plan.result.rejected += outcome[1]
        done += sum(len(c) for c in round_)
        if progress is not None:
            progress(done, len(plan.planned))


async def run_sync(
    db: Database, sync_id: str, http: httpx.AsyncClient, *, now: datetime | None = None,
    progress: Progress | None = None, claim: Claim | None = None,
) -> TraitRun | None:  # fmt: skip
    """One run; None when another run holds the sync."""
    moment = now or utcnow()
    if not await _claim(db, sync_id, moment, claim or Claim()):
        return None
    plan = await _prepare(db, sync_id, moment)
    assert plan.result is not None
    destination = plan.destination
    client = TrackClient(destination["rest_endpoint"], destination["rest_api_key"] or "", http)
    if progress is not None:
        progress(0, len(plan.planned))
    try:
        await _send(db, plan, client, progress)
    except TrackFailed as failure:
        plan.result.error = str(failure)
    return await _close(db, plan)


async def _close(db: Database, plan: _Plan) -> TraitRun:
    assert plan.result is not None
    result, finished = plan.result, utcnow()
    result.status = "failed" if result.error else "succeeded"
    async with db.write_turn(), db.transaction() as conn:
        await repo.finish_run(conn, plan.run_id, {
            "status": result.status, "sent": result.sent, "rejected": result.rejected,
            "error": result.error, "finished_at": finished,
        })  # fmt: skip
        values: dict[str, Any] = {"leased_until": None, "leased_by": None}
        if result.error:
            values.update(last_failure_at=finished, next_run_at=finished + RETRY_FAILED_AFTER)
        else:
            period = logic.CADENCES[plan.sync["cadence"]]
            values.update(
                last_success_at=finished, enabled=period is not None,
                next_run_at=finished + timedelta(seconds=period) if period else None,
            )  # fmt: skip
        await repo.update_sync(conn, plan.sync["id"], values)
        await repo.forget_runs(conn, finished - HISTORY)
    return result


async def run_due(db: Database, http: httpx.AsyncClient, now: datetime | None = None) -> int:
    """``traits.run_due``: every enabled sync whose time has come, one after another."""
    moment = now or utcnow()
    return await leases.run_due(
        db, trait_syncs, moment, lambda sync_id: run_sync(db, sync_id, http, now=moment)
    )


def run_row(run: RowMapping) -> dict[str, Any]:
    return {
        "run_id": run["id"], "status": run["status"], "candidates": run["candidates"],
        "sent": run["sent"], "unchanged": run["unchanged"], "skipped": run["skipped"],
        "rejected": run["rejected"], "error": run["error"],
        "started_at": run["started_at"].isoformat(),
        "finished_at": run["finished_at"].isoformat() if run["finished_at"] else None,
    }  # fmt: skip
