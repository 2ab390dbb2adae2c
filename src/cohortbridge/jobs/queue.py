"""The job queue of PostgreSQL deployments: procrastinate (ARCHITECTURE.md, "Jobs").

Periodic tasks only enqueue: they find the due entities (a cohort to compute, a sync to run, a
stream with rows to forward) and defer one job per entity. Each job carries the entity's lock,
so two jobs of one entity never run at once on any number of workers, and a queueing lock, so
at most one waits. A job whose worker died (no heartbeat) is ended by ``recover`` and the
entity enqueued again by its schedule; handlers re-read the entity's state, so running the
work again is safe.

Upgrading procrastinate means an Alembic revision that applies its migration files: the
schema installed here is the one of the locked version.
"""

from __future__ import annotations

import logging
from typing import Any

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.jobs import Status
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

log = logging.getLogger("cohortbridge.jobs")


def conninfo(url: str) -> str:
    """libpq's form of a SQLAlchemy URL (``postgresql+psycopg://…``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def cron(interval_s: float) -> str:
    """A cron expression firing about every ``interval_s`` (procrastinate reads a 6th column
    as seconds); a period that does not divide the next unit is rounded down to one that
    does, so ticks stay evenly spaced."""
    seconds = max(1, int(interval_s))
    if seconds < 60:
        return f"* * * * * */{_divisor(seconds, 60)}"
    minutes = seconds // 60
    if minutes < 60:
        return f"*/{_divisor(minutes, 60)} * * * *"
    hours = minutes // 60
    if hours < 24:
        return f"0 */{_divisor(hours, 24)} * * *"
    return "0 0 * * *"


def _divisor(value: int, unit: int) -> int:
    return max(d for d in range(1, value + 1) if unit % d == 0)


def new_app(url: str) -> procrastinate.App:
    return procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo(url)))


async def enqueue(task: procrastinate.tasks.Task[Any, Any, Any], lock: str, **args: Any) -> bool:
    """Defer one job of an entity; False when one already waits for it."""
    try:
        await task.configure(lock=lock, queueing_lock=lock).defer_async(**args)
    except AlreadyEnqueued:
        return False
    return True


async def recover(app: procrastinate.App, stalled_after_s: float) -> int:
    """End the jobs of workers without a heartbeat as failed, so their locks free up; how many.

    They are not retried in place: a retry may collide with the job already waiting for the
    same entity (one queueing lock), and the schedules enqueue anything still due anyway. The
    entity's state says what is left (a sync's run goes on from what engage acknowledged)."""
    stalled = list(await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after_s))
    for job in stalled:
        log.warning("job %s (%s, %s) lost its worker; ended as failed, the schedule takes "
                    "its work up again", job.id, job.task_name, job.lock)  # fmt: skip
        await app.job_manager.finish_job(job, Status.FAILED, delete_job=False)
    return len(stalled)


def install_schema(bind: Connection) -> None:
    """procrastinate's tables, types and functions, once (from the Alembic revision)."""
    found = bind.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar()
    if found is not None:
        return
    _raw(bind, procrastinate.schema.SchemaManager.get_schema())


def remove_schema(bind: Connection) -> None:
    _raw(bind, _DROP)


def _raw(bind: Connection, script: str) -> None:
    # Through the driver without parameters: the script's own % and : stay as written.
    bind.connection.driver_connection.execute(script)  # type: ignore[union-attr]


# Tables first (their triggers go with them), then functions, then types.
_DROP = """
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT tablename FROM pg_tables
           WHERE schemaname = current_schema() AND tablename LIKE 'procrastinate\\_%' LOOP
    EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', r.tablename);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS fn FROM pg_proc p
           JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%' LOOP
    EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', r.fn);
  END LOOP;
  FOR r IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
           WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate\\_%'
             AND t.typtype IN ('e', 'c') LOOP
    EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', r.typname);
  END LOOP;
END $$
"""
