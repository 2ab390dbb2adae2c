"""analytics' periodic jobs, in one place: the API process runs them (embedded default) and so
does ``cohortbridge worker``. Each is idempotent and claims its work (a cohort's next compute
time, a sync's lease), so any number of processes can run them side by side."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from cohortbridge.analytics.cohorts import tasks as cohorts
from cohortbridge.analytics.computations import tasks as computations
from cohortbridge.analytics.destinations import service as destinations
from cohortbridge.analytics.ingest import tasks as ingest
from cohortbridge.analytics.streams import service as streams
from cohortbridge.analytics.traits import service as traits
from cohortbridge.config import Settings
from cohortbridge.db.engine import Database
from cohortbridge.jobs.background import Background, periodically

Job = Callable[[], Awaitable[Any]]


def jobs(db: Database, settings: Settings, http: httpx.AsyncClient) -> dict[str, tuple[float, Job]]:
    """Name → (interval in seconds, the work of one round)."""
    return {
        "ingest.prune": (settings.maintenance_interval_s, lambda: ingest.prune(db, settings)),
        "cohorts.compute_due": (settings.cohort_tick_s, lambda: cohorts.compute_due(db)),
        "computations.compute_due": (
            settings.cohort_tick_s,
            lambda: computations.compute_due(db),
        ),
        "destinations.run_due": (settings.cohort_tick_s, lambda: destinations.run_due(db, http)),
        "traits.run_due": (settings.cohort_tick_s, lambda: traits.run_due(db, http)),
        "streams.forward": (settings.stream_tick_s, lambda: _forward(db, http)),
        "streams.prune": (settings.maintenance_interval_s, lambda: streams.prune(db)),
    }


async def _forward(db: Database, http: httpx.AsyncClient) -> dict[str, int]:
    done = await streams.forward(db, http)
    return {"forwarded": done.forwarded, "rejected": done.rejected, "failed": done.failed,
            "dead": done.dead}  # fmt: skip


def start(
    background: Background, db: Database, settings: Settings, http: httpx.AsyncClient
) -> None:
    for name, (interval, work) in jobs(db, settings, http).items():
        background.spawn(name, periodically(interval, work, name))


async def run_once(db: Database, settings: Settings, http: httpx.AsyncClient) -> dict[str, Any]:
    """Every job one round, in order (the cohort before its syncs): for cron and tests."""
    return {name: await work() for name, (_interval, work) in jobs(db, settings, http).items()}
