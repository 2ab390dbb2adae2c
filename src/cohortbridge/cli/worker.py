"""``worker``: analytics' jobs outside the API server. On PostgreSQL a procrastinate worker
(run as many as you like, on as many machines); on SQLite the in-process runner."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from cohortbridge.cli.runtime import console, migrate_side, print_json, settings_of

if TYPE_CHECKING:
    import httpx

    from cohortbridge.config import Settings
    from cohortbridge.db.engine import Database


def worker(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="Run every job one round in this process and exit.")
    ] = False,
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1, help="PostgreSQL: jobs at once [default: COHORTBRIDGE_WORKER_CONCURRENCY]"
        ),
    ] = None,
) -> None:
    """Run analytics' jobs: compute due cohorts and computations, run due cohort and property
    syncs, forward event streams, prune.

    With PostgreSQL this is a procrastinate worker: run as many as you like on as many machines.
    Each cohort, sync and stream is one job under its own lock, so none runs twice at once, and
    the jobs of a worker that died (no heartbeat for COHORTBRIDGE_WORKER_STALLED_AFTER_S) run
    again on another. Set COHORTBRIDGE_JOBS_IN_SERVER=false on the API servers when workers
    do the jobs. Ctrl-C (or SIGTERM) lets running jobs finish, then stops."""
    settings = settings_of(ctx)
    if concurrency is not None:
        settings = settings.model_copy(update={"worker_concurrency": concurrency})
    migrate_side(settings, "analytics")
    _log_to_stderr(settings)
    from cohortbridge.cli.serve import run_loop

    result: dict[str, Any] = {}

    async def capture() -> None:
        result["rounds"] = await _main(settings, once)

    run_loop(capture())
    if once:
        print_json({name: value for name, value in (result["rounds"] or {}).items()
                    if value is not None})  # fmt: skip


def _log_to_stderr(settings: Settings) -> None:
    """Jobs starting and ending (procrastinate's lines) and the jobs' own, with their time."""
    import logging

    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request to engage
    if settings.log_level.lower() != "debug":  # two lines per job, schedules every second
        logging.getLogger("procrastinate").setLevel(logging.WARNING)


async def _main(settings: Settings, once: bool) -> Any:
    import httpx

    from cohortbridge.analytics import jobs
    from cohortbridge.db.engine import Database

    db = Database.connect(settings.database_url("analytics"))
    http = httpx.AsyncClient(timeout=settings.destination_timeout_s)
    try:
        if once:
            return await jobs.run_once(db, settings, http)
        if db.dialect == "postgresql":
            await _queue_worker(db, settings, http)
        else:
            await _in_process(db, settings, http)
    finally:
        await http.aclose()
        await db.dispose()
    return None


async def _in_process(db: Database, settings: Settings, http: httpx.AsyncClient) -> None:
    import asyncio

    from cohortbridge.analytics import jobs
    from cohortbridge.jobs.background import Background

    background = Background()
    jobs.start(background, db, settings, http)
    console.print("worker running analytics jobs in this process; Ctrl-C stops")
    try:
        await asyncio.Event().wait()
    finally:
        await background.aclose()


async def _queue_worker(db: Database, settings: Settings, http: httpx.AsyncClient) -> None:
    from cohortbridge.analytics import queue

    app = queue.build(db, settings, http)
    stalled = settings.worker_stalled_after_s
    console.print(f"worker taking analytics jobs from PostgreSQL's queue "
                  f"({settings.worker_concurrency} at once); Ctrl-C stops")  # fmt: skip
    async with app.open_async():
        await app.run_worker_async(
            concurrency=settings.worker_concurrency,
            delete_jobs="successful",
            update_heartbeat_interval=max(0.5, stalled / 4),
            stalled_worker_timeout=stalled,
            install_signal_handlers=True,
        )
