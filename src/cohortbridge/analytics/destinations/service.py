"""The Braze destination's cohort sync (spec amplitude §4.1). Runs own their transactions: a
plan, then one small transaction per acknowledged batch, so a run that stops loses nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.cohorts import service as cohorts
from cohortbridge.analytics.cohorts.repository import definitions as cohort_repo
from cohortbridge.analytics.destinations import logic
from cohortbridge.analytics.destinations import repository as repo
from cohortbridge.analytics.destinations.braze import (
    PartnerClient,
    PartnerRefused,
    PartnerUnavailable,
)
from cohortbridge.analytics.destinations.models import cohort_syncs
from cohortbridge.db import leases
from cohortbridge.db.engine import Database
from cohortbridge.db.leases import Claim
from cohortbridge.kit.clock import utcnow
from cohortbridge.kit.ids import short_id

LEASE = timedelta(minutes=15)
HISTORY = timedelta(days=14)
RETRY_FAILED_AFTER = timedelta(minutes=5)
FULL_PLAN = timedelta(days=1)
# Writes that committed after the last run had read (PostgreSQL): re-planning them is harmless.
CHANGE_MARGIN = timedelta(minutes=5)
Progress = Callable[[int, int], None]


class DestinationError(ValueError):
    pass


async def create_destination(
    conn: AsyncConnection, project_id: int, *, rest_endpoint: str, data_import_key: str | None,
    partner_api_key: str | None, rest_api_key: str | None = None, app_id: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    if not rest_endpoint.startswith(("http://", "https://")):
        raise DestinationError("--rest-endpoint must be an http(s) URL, e.g. http://127.0.0.1:8400")
    now = utcnow()
    destination_id = short_id()
    await repo.insert_destination(conn, {
        "id": destination_id, "project_id": project_id, "kind": "braze",
        "name": name or f"Braze {rest_endpoint}", "rest_endpoint": rest_endpoint.rstrip("/"),
        "data_import_key": data_import_key, "partner_api_key": partner_api_key,
        "rest_api_key": rest_api_key, "app_id": app_id, "created_at": now, "updated_at": now,
    })  # fmt: skip
    return {"destination_id": destination_id}


async def streaming_destination(conn: AsyncConnection, destination_id: str) -> RowMapping:
    """A destination that can take /users/track calls (streams, property syncs)."""
    destination = await repo.destination(conn, destination_id)
    if destination is None:
        raise LookupError(f"no destination {destination_id!r}")
    if not destination["rest_api_key"]:
        raise DestinationError(
            "the destination has no REST API key: add one with `destinations update "
            f"{destination_id} --rest-api-key KEY` (it needs users.track)"
        )
    return destination


async def update_destination(
    conn: AsyncConnection, destination_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    """Replace credentials (e.g. a new data import key after a 401) without touching syncs."""
    if await repo.destination(conn, destination_id) is None:
        raise LookupError(f"no destination {destination_id!r}")
    values = {k: v for k, v in changes.items() if v is not None}
    if "rest_endpoint" in values:
        values["rest_endpoint"] = str(values["rest_endpoint"]).rstrip("/")
    await repo.update_destination(conn, destination_id, {**values, "updated_at": utcnow()})
    return {"destination_id": destination_id}


async def create_sync(
    conn: AsyncConnection, *, cohort_id: str, destination_id: str, cadence: str,
    identifiers: list[str],
) -> dict[str, Any]:  # fmt: skip
    destination = await repo.destination(conn, destination_id)
    if destination is None:
        raise LookupError(f"no destination {destination_id!r} (see `destinations list`)")
    cohort = await cohort_repo.get(conn, destination["project_id"], cohort_id)
    if cohort is None:
        raise LookupError(f"no cohort {cohort_id!r} in the destination's project")
    if not (destination["data_import_key"] and destination["partner_api_key"]):
        raise DestinationError("the destination needs a data import key and a partner key")
    now = utcnow()
    sync_id = short_id()
    await repo.insert_sync(conn, {
        "id": sync_id, "project_id": destination["project_id"], "cohort": cohort["pk"],
        "destination": destination_id, "cadence": logic.cadence(cadence),
        "identifiers": logic.identifiers(identifiers), "enabled": True, "next_run_at": now,
        "created_at": now,
    })  # fmt: skip
    if cadence == "realtime" and cohort["refresh_s"] > logic.CADENCES["realtime"]:
        # A real-time sync makes its cohort compute every minute.
        await cohort_repo.update_cohort(conn, cohort["pk"], {"refresh_s": 60,
                                                             "next_compute_at": now})  # fmt: skip
    return {"sync_id": sync_id}


@dataclass
class RunResult:
    sync_id: str
    status: str
    added: int = 0
    removed: int = 0
    skipped: int = 0
    rejected: int = 0
    error: str | None = None
    # False when only the users changed since the last successful run were planned.
    full: bool = True


@dataclass(frozen=True)
class _Run:
    sync: RowMapping
    destination: RowMapping
    cohort: RowMapping
    run_id: int


async def _claim(db: Database, sync_id: str, now: datetime, claim: Claim) -> bool:
    async with db.write_turn(), db.transaction() as conn:
        return await repo.lease(conn, sync_id, now, now + LEASE, owner=claim.owner,
                                due_only=claim.due_only)  # fmt: skip


async def _prepare(db: Database, sync_id: str, now: datetime) -> tuple[_Run, dict[str, int]]:
    """Compute the cohort if it never was, then plan the run and open its history row."""
    async with db.write_turn(), db.transaction() as conn:
        sync = await repo.sync(conn, sync_id)
        assert sync is not None
        cohort = await cohort_repo.by_pk(conn, sync["cohort"])
        assert cohort is not None
        if cohort["kind"] == "behavioral" and cohort["version"] == 0:
            await cohorts.compute(conn, cohort, now)
            cohort = await cohort_repo.by_pk(conn, sync["cohort"])
            assert cohort is not None
        destination = await repo.destination(conn, sync["destination"])
        assert destination is not None
        among = await _changed_only(conn, sync, cohort, now)
        counts = await repo.plan(conn, sync_id, cohort["pk"], sync["identifiers"], among)
        counts["full"] = among is None
        await repo.interrupt_runs(conn, sync_id, now)
        run_id = await repo.start_run(conn, {
            "sync": sync_id, "cohort_version": cohort["version"], "status": "running",
            "added": 0, "removed": 0, "skipped": counts["skipped"], "rejected": 0,
            "started_at": now,
        })  # fmt: skip
        if sync["cadence"] != "realtime":  # per-user history: scheduled and one-time runs
            await repo.record_skipped(conn, run_id, await repo.unresolved(conn), logic.UNRESOLVED)
    return _Run(sync, destination, cohort, run_id), counts


async def _changed_only(
    conn: AsyncConnection, sync: RowMapping, cohort: RowMapping, now: datetime
) -> Any:
    """After a run that succeeded lately, only the users that changed since need planning;
    after a failure, the first time and at least daily, everyone is (what engage holds is then
    checked against the whole cohort)."""
    last = await repo.latest_run(conn, sync["id"])
    if last is None or last["status"] != "succeeded" or now - last["started_at"] >= FULL_PLAN:
        return None
    return repo.changed_since(cohort["pk"], cohort["project_id"], last["cohort_version"],
                              last["started_at"] - CHANGE_MARGIN)  # fmt: skip


def _client(destination: RowMapping, http: httpx.AsyncClient, **options: Any) -> PartnerClient:
    return PartnerClient(
        rest_endpoint=destination["rest_endpoint"],
        partner_api_key=destination["partner_api_key"] or "",
        client_secret=destination["data_import_key"] or "", http=http, **options,
    )  # fmt: skip


async def _name(db: Database, run: _Run, client: PartnerClient) -> None:
    """Name the cohort in Braze before its first users, and again when it was renamed."""
    title = logic.cohort_title(run.cohort["name"], run.cohort["id"])
    if run.sync["named_as"] == title:
        return
    await client.name_cohort(run.cohort["id"], title, run.cohort["created_at"].isoformat())
    async with db.write_turn(), db.transaction() as conn:
        await repo.update_sync(conn, run.sync["id"], {"named_as": title})


@dataclass
class _Tally:
    added: int = 0
    removed: int = 0
    rejected: int = 0
    done: int = 0


async def _send(
    db: Database, run: _Run, client: PartnerClient, tally: _Tally, *, total: int,
    progress: Progress | None,
) -> None:  # fmt: skip
    """Send the plan in batches of 1,000 ids with four requests in flight all along (a reader
    keeps the queue full); each acknowledged batch is recorded at once, so a later failure
    loses nothing that engage took. After a failure the batches in flight finish, no new one
    starts, and the failure ends the run."""
    history = run.sync["cadence"] != "realtime"
    queue: asyncio.Queue[list[RowMapping] | None] = asyncio.Queue(maxsize=logic.PARALLEL)
    failures: list[Exception] = []

    async def read() -> None:
        after = 0
        try:
            while not failures:
                async with db.read() as conn:
                    rows = await repo.pending(conn, run.sync["id"], after,
                                              logic.MAX_IDS * logic.PARALLEL)  # fmt: skip
                if not rows:
                    return
                after = rows[-1]["seq"]
                for i in range(0, len(rows), logic.MAX_IDS):
                    await queue.put(rows[i : i + logic.MAX_IDS])
        except Exception as failure:  # re-raised below, once the batches in flight are done
            failures.append(failure)
        finally:
            for _ in range(logic.PARALLEL):
                await queue.put(None)

    async def send() -> None:
        while (chunk := await queue.get()) is not None:
            if failures:
                continue  # drain: nothing new starts after a failure
            try:
                await _batch(db, run, client, chunk, tally, history=history)
            except Exception as failure:  # re-raised below, once the batches in flight are done
                failures.append(failure)
            if progress is not None:
                progress(tally.done, total)

    await asyncio.gather(read(), *(send() for _ in range(logic.PARALLEL)))
    if failures:
        raise failures[0]


async def _batch(
    db: Database, run: _Run, client: PartnerClient, rows: list[RowMapping], tally: _Tally, *,
    history: bool,
) -> None:  # fmt: skip
    changes = [logic.Change(r["amplitude_id"], r["kind"], r["value"], r["remove"]) for r in rows]
    answer = await client.change_users(run.cohort["id"], logic.cohort_changes(changes))
    async with db.write_turn(), db.transaction() as conn:
        await repo.acknowledge(conn, run.sync["id"], rows, run.run_id if history else None)
    removes = sum(1 for r in rows if r["remove"])
    tally.removed += removes
    tally.added += len(rows) - removes
    tally.rejected += int(answer.get("unmatched", 0))
    tally.done += len(rows)


def next_run(cadence: str, now: datetime) -> datetime | None:
    period = logic.CADENCES[cadence]
    return now + timedelta(seconds=period) if period is not None else None


async def run_sync(
    db: Database, sync_id: str, http: httpx.AsyncClient, *, now: datetime | None = None,
    progress: Progress | None = None, claim: Claim | None = None, **client_options: Any,
) -> RunResult | None:  # fmt: skip
    """One run of a cohort sync; None when another run holds the sync."""
    moment = now or utcnow()
    if not await _claim(db, sync_id, moment, claim or Claim()):
        return None
    run, counts = await _prepare(db, sync_id, moment)
    client = _client(run.destination, http, **client_options)
    tally = _Tally()
    error: str | None = None
    try:
        await _name(db, run, client)
        total = counts["adds"] + counts["removes"]
        await _send(db, run, client, tally, total=total, progress=progress)
    except (PartnerRefused, PartnerUnavailable) as failure:
        error = str(failure)
    return await _close(db, run, tally, counts, error)


async def _close(
    db: Database, run: _Run, tally: _Tally, counts: dict[str, int], error: str | None
) -> RunResult:
    finished = utcnow()
    status = "failed" if error else "succeeded"
    async with db.write_turn(), db.transaction() as conn:
        await repo.finish_run(conn, run.run_id, {
            "status": status, "added": tally.added, "removed": tally.removed,
            "rejected": tally.rejected, "error": error, "finished_at": finished,
        })  # fmt: skip
        cadence = run.sync["cadence"]
        values: dict[str, Any] = {"leased_until": None, "leased_by": None}
        if error:
            values.update(last_failure_at=finished,
                          next_run_at=finished + RETRY_FAILED_AFTER)  # fmt: skip
        else:
            values.update(last_success_at=finished, next_run_at=next_run(cadence, finished),
                          enabled=cadence != "once")  # fmt: skip
        await repo.update_sync(conn, run.sync["id"], values)
        await repo.forget_plan(conn, run.sync["id"])
        await repo.forget_runs(conn, finished - HISTORY)
    return RunResult(run.sync["id"], status, tally.added, tally.removed, counts["skipped"],
                     tally.rejected, error, bool(counts["full"]))  # fmt: skip


async def run_due(db: Database, http: httpx.AsyncClient, now: datetime | None = None) -> int:
    """``destinations.run_due``: every enabled sync whose time has come, one after another."""
    moment = now or utcnow()
    return await leases.run_due(
        db, cohort_syncs, moment, lambda sync_id: run_sync(db, sync_id, http, now=moment)
    )
