"""``worker``: analytics' periodic jobs (cohort and computation ticks, cohort syncs, pruning)
outside the API server. Run several: each job claims its work."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cohortbridge.cli.runtime import console, migrate_side, print_json, settings_of


def worker(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Run every job one round and exit.")] = False,
) -> None:
    """Run analytics' jobs: compute due cohorts and computations, run due cohort syncs, prune.

    With PostgreSQL, run as many as you like on as many machines: a cohort's computation and a
    sync's run are claimed in the database, so none runs twice at once. Set
    COHORTBRIDGE_JOBS_IN_SERVER=false on the API servers when workers do the jobs."""
    settings = settings_of(ctx)
    migrate_side(settings, "analytics")

    async def main() -> Any:
        import asyncio

        import httpx

        from cohortbridge.analytics import jobs
        from cohortbridge.db.engine import Database
        from cohortbridge.jobs.background import Background

        db = Database.connect(settings.database_url("analytics"))
        http = httpx.AsyncClient(timeout=settings.destination_timeout_s)
        try:
            if once:
                return await jobs.run_once(db, settings, http)
            background = Background()
            jobs.start(background, db, settings, http)
            console.print("worker running analytics jobs; Ctrl-C stops")
            try:
                await asyncio.Event().wait()
            finally:
                await background.aclose()
        finally:
            await http.aclose()
            await db.dispose()
        return None

    from cohortbridge.cli.serve import run_loop

    result: dict[str, Any] = {}

    async def capture() -> None:
        result["rounds"] = await main()

    run_loop(capture())
    if once:
        print_json({name: value for name, value in (result["rounds"] or {}).items()
                    if value is not None})  # fmt: skip
