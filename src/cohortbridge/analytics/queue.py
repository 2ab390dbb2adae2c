"""analytics' jobs on PostgreSQL: procrastinate tasks (``cohortbridge worker``).

The same handlers as the in-process runner (``analytics.jobs``), one entity per job: periodic
schedules find what is due and enqueue it under the entity's lock; the job runs it if it is
still due. Any number of workers on any number of machines share the queue.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import procrastinate
from procrastinate.job_context import JobContext
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.cohorts import tasks as cohorts
from cohortbridge.analytics.cohorts.repository import definitions as cohort_repo
from cohortbridge.analytics.computations import repository as computation_repo
from cohortbridge.analytics.computations import tasks as computations
from cohortbridge.analytics.destinations import repository as destination_repo
from cohortbridge.analytics.destinations import service as destinations
from cohortbridge.analytics.ingest import tasks as ingest
from cohortbridge.analytics.streams import repository as stream_repo
from cohortbridge.analytics.streams import service as streams
from cohortbridge.analytics.traits import repository as trait_repo
from cohortbridge.analytics.traits import service as traits
from cohortbridge.config import Settings
from cohortbridge.db.engine import Database
from cohortbridge.db.leases import QUEUE_OWNER, Claim
from cohortbridge.jobs import queue
from cohortbridge.kit.clock import utcnow

log = logging.getLogger("cohortbridge.worker")

# How long one job forwards a stream at most.
FORWARD_BUDGET_S = 30.0
# Finished jobs of the queue are kept this long (successful ones go at once).
KEEP_FINISHED_HOURS = 14 * 24


def _owner(context: JobContext) -> Claim:
    assert context.job is not None and context.job.lock is not None
    # The lease is named after the entity's queue lock, which one job holds at a time: the job
    # after one whose worker died takes the lease over at once instead of waiting it out.
    return Claim(owner=f"{QUEUE_OWNER}{context.job.lock}", due_only=True)


def _id(context: JobContext) -> int | None:
    return context.job.id if context.job is not None else None


def _ended(context: JobContext, what: str, key: str, status: str | None) -> str | None:
    # None: not due any more (it waited behind the run before it), or held by another runner.
    log.info("job %s: %s %s %s", _id(context), what, key, status or "was not due; nothing ran")
    return status


def build(db: Database, settings: Settings, http: httpx.AsyncClient) -> procrastinate.App:
    app = queue.new_app(db.url)
    _entity_tasks(app, db, http)
    _schedules(app, db, settings)
    _maintenance(app, db, settings)
    return app


def _entity_tasks(app: procrastinate.App, db: Database, http: httpx.AsyncClient) -> None:
    @app.task(name="cohorts.compute")
    async def compute_cohort(pk: int) -> bool:
        return await cohorts.compute_one(db, pk)

    @app.task(name="computations.compute")
    async def compute_computation(pk: int) -> bool:
        return await computations.compute_one(db, pk)

    @app.task(name="destinations.run_sync", pass_context=True)
    async def run_cohort_sync(context: JobContext, sync_id: str) -> str | None:
        log.info("job %s runs cohort sync %s", _id(context), sync_id)
        result = await destinations.run_sync(db, sync_id, http, claim=_owner(context))
        return _ended(context, "cohort sync", sync_id, result.status if result else None)

    @app.task(name="traits.run_sync", pass_context=True)
    async def run_trait_sync(context: JobContext, sync_id: str) -> str | None:
        log.info("job %s runs property sync %s", _id(context), sync_id)
        result = await traits.run_sync(db, sync_id, http, claim=_owner(context))
        return _ended(context, "property sync", sync_id, result.status if result else None)

    @app.task(name="streams.forward_stream")
    async def forward_stream(stream_id: str) -> int:
        # Bounded, so that a stream under constant ingestion still lets its worker stop; the
        # schedule enqueues the next job within a second.
        done = await streams.forward_stream(db, stream_id, http, budget_s=FORWARD_BUDGET_S)
        return done.forwarded


# What each schedule finds due: (the entity's lock, the job's arguments) per entity.
Due = Callable[[AsyncConnection], Awaitable[list[tuple[str, dict[str, Any]]]]]


async def _cohorts(conn: AsyncConnection) -> list[tuple[str, dict[str, Any]]]:
    return [(f"cohort:{r['pk']}", {"pk": r["pk"]}) for r in await cohort_repo.due(conn, utcnow())]


async def _computations(conn: AsyncConnection) -> list[tuple[str, dict[str, Any]]]:
    due = await computation_repo.due(conn, utcnow())
    return [(f"computation:{r['pk']}", {"pk": r["pk"]}) for r in due]


async def _cohort_syncs(conn: AsyncConnection) -> list[tuple[str, dict[str, Any]]]:
    due = await destination_repo.due(conn, utcnow(), queue=True)
    return [(f"cohort_sync:{s}", {"sync_id": s}) for s in due]


async def _trait_syncs(conn: AsyncConnection) -> list[tuple[str, dict[str, Any]]]:
    due = await trait_repo.due(conn, utcnow(), queue=True)
    return [(f"trait_sync:{s}", {"sync_id": s}) for s in due]


async def _streams(conn: AsyncConnection) -> list[tuple[str, dict[str, Any]]]:
    busy = await stream_repo.streams_with_work(conn, utcnow())
    return [(f"stream:{s}", {"stream_id": s}) for s in busy]


def _schedules(app: procrastinate.App, db: Database, settings: Settings) -> None:
    tick, stream_tick = queue.cron(settings.cohort_tick_s), queue.cron(settings.stream_tick_s)
    for name, cron, find, target in (
        ("cohorts.schedule", tick, _cohorts, "cohorts.compute"),
        ("computations.schedule", tick, _computations, "computations.compute"),
        ("destinations.schedule", tick, _cohort_syncs, "destinations.run_sync"),
        ("traits.schedule", tick, _trait_syncs, "traits.run_sync"),
        ("streams.schedule", stream_tick, _streams, "streams.forward_stream"),
    ):
        _schedule(app, db, name, cron=cron, find=find, target=target)


def _schedule(
    app: procrastinate.App, db: Database, name: str, *, cron: str, find: Due, target: str
) -> None:
    """A periodic task that only enqueues: one job of ``target`` per due entity."""

    async def schedule(timestamp: int) -> int:
        async with db.read() as conn:
            due = await find(conn)
        task = app.tasks[target]
        return sum([await queue.enqueue(task, lock, **args) for lock, args in due])

    app.periodic(cron=cron)(app.task(name=name, queueing_lock=name)(schedule))


def _maintenance(app: procrastinate.App, db: Database, settings: Settings) -> None:
    daily_ish = queue.cron(settings.maintenance_interval_s)

    @app.periodic(cron=queue.cron(max(1.0, settings.worker_stalled_after_s / 3)))
    @app.task(name="jobs.recover", queueing_lock="jobs.recover")
    async def recover(timestamp: int) -> int:
        return await queue.recover(app, settings.worker_stalled_after_s)

    @app.periodic(cron=daily_ish)
    @app.task(name="ingest.prune", queueing_lock="ingest.prune")
    async def prune_ingest(timestamp: int) -> None:
        await ingest.prune(db, settings)

    @app.periodic(cron=daily_ish)
    @app.task(name="streams.prune", queueing_lock="streams.prune")
    async def prune_streams(timestamp: int) -> None:
        await streams.prune(db)

    @app.periodic(cron=daily_ish)
    @app.task(name="jobs.prune", queueing_lock="jobs.prune")
    async def prune_jobs(timestamp: int) -> None:
        await app.job_manager.delete_old_jobs(nb_hours=KEEP_FINISHED_HOURS, include_failed=True)
