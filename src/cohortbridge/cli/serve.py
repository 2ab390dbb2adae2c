"""``up`` and ``serve``: the HTTP servers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cohortbridge.cli.demo import seed as demo_seed
from cohortbridge.cli.runtime import (
    console,
    migrate_side,
    run_in_transaction,
    settings_of,
    side_named,
)
from cohortbridge.config import SIDES, Settings, Side
from cohortbridge.kit.heap import freeze_startup_objects

if TYPE_CHECKING:
    import uvicorn
    from sqlalchemy.ext.asyncio import AsyncConnection


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop where it is installed (it is a dependency on Linux and macOS)."""
    freeze_startup_objects()
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def _server(settings: Settings, side: Side, host: str, port: int) -> uvicorn.Server:
    import uvicorn

    from cohortbridge.analytics.app import create_app as create_analytics
    from cohortbridge.engage.app import create_app as create_engage

    factory = create_engage if side == "engage" else create_analytics
    config = uvicorn.Config(
        factory(settings),
        host=host,
        port=port,
        log_level=settings.log_level,
        access_log=False,
        lifespan="on",
    )
    return uvicorn.Server(config)


def _seed_first_workspace(settings: Settings) -> Callable[[AsyncConnection], Awaitable[Any]]:
    """On an empty engage database, create the default workspace so `up` is usable at once."""

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.engage.workspaces import service
        from cohortbridge.engage.workspaces.logic import DEFAULT_WORKSPACE

        if await service.list_workspaces(conn):
            return None
        return await service.bootstrap(conn, DEFAULT_WORKSPACE, settings.public_url("engage"))

    return work


async def _seed_first_project(conn: AsyncConnection) -> Any:
    """On an empty analytics database, create a default project so SDKs can send at once."""
    from cohortbridge.analytics.projects import service

    if await service.list_projects(conn):
        return None
    return await service.create_project(conn, DEFAULT_PROJECT)


DEFAULT_PROJECT = "Default Project"


def _print_demo(demo: Any) -> None:
    console.print(
        f"Demo: analytics cohort [bold]{demo.cohort_id}[/bold] syncs in real time to engage; "
        f'segment [bold]{demo.segment_id}[/bold] "Amplitude Cohorts includes" it and will hold '
        f"{demo.expected} users within two minutes:\n"
        f"  cohortbridge engage segments size {demo.segment_id}\n"
        + "".join(f"  cohortbridge analytics syncs history {s}\n" for s in demo.sync_ids)
        + f"Stream [bold]{demo.stream_id}[/bold] forwards the {demo.plays} plays of identified "
        "users to engage's /users/track within seconds, and the user property plan syncs "
        "daily:\n"
        f"  cohortbridge analytics streams history {demo.stream_id}\n"
        "  cohortbridge engage datapoints --workspace 'Default Workspace'\n"
    )


def up(
    ctx: typer.Context,
    demo: Annotated[
        bool, typer.Option("--demo/--no-demo", help="On a first start, seed the wired demo.")
    ] = True,
) -> None:
    """Run everything in one process on the embedded default: engage on :8400 and analytics
    on :8401 (migrating both databases first)."""
    settings = settings_of(ctx)
    for side in SIDES:
        migrate_side(settings, side)
    first = run_in_transaction(settings, "engage", _seed_first_workspace(settings))
    project = run_in_transaction(settings, "analytics", _seed_first_project)
    engage = _server(settings, "engage", settings.engage_host, settings.engage_port)
    analytics = _server(settings, "analytics", settings.analytics_host, settings.analytics_port)
    console.print(
        f"engage    → {settings.public_url('engage')}\n"
        f"analytics → {settings.public_url('analytics')}\n"
        f"data      → {settings.data_dir.resolve()}"
    )
    if first is not None:
        console.print(
            f"First start: workspace {first.workspace_id!r} with app {first.app_id!r}.\n"
            f"REST API key (shown once): [bold]{first.rest_api_key}[/bold]"
        )
    if project is not None:
        console.print(
            f"First start: analytics project {DEFAULT_PROJECT!r} (id {project.project_id}).\n"
            f"API key: [bold]{project.api_key}[/bold]  secret key (shown once): "
            f"[bold]{project.secret_key}[/bold]"
        )
    if first is not None and project is not None and demo:
        _print_demo(demo_seed(settings, first.workspace_id, first.app_id, project.project_id))
    console.print("More keys: `cohortbridge engage api-keys create --help`, "
                  "`cohortbridge analytics project create --help`. Ctrl-C stops.")  # fmt: skip

    async def both() -> None:
        await asyncio.gather(engage.serve(), analytics.serve())

    run_loop(both())


def serve(
    ctx: typer.Context,
    side: Annotated[str, typer.Argument(help="engage or analytics")],
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default 8400 / 8401).")] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes sharing the port (uses both cores).")
    ] = 1,
) -> None:
    """Run one side's API server (stateless; run several behind a load balancer)."""
    name = side_named(side)
    settings = settings_of(ctx)
    migrate_side(settings, name)
    default_port = settings.engage_port if name == "engage" else settings.analytics_port
    if workers > 1:
        _serve_workers(settings, name, host, port or default_port, workers)
        return
    server = _server(settings, name, host, port or default_port)
    run_loop(server.serve())


def _serve_workers(settings: Settings, side: Side, host: str, port: int, workers: int) -> None:
    import os

    import uvicorn

    from cohortbridge.kit.balancer import Balancer, WorkerSpec

    # Worker processes read their settings from the environment, like any process here.
    os.environ["COHORTBRIDGE_DATA_DIR"] = str(settings.data_dir)
    uvicorn.Config("", log_level=settings.log_level)  # the parent logs as the workers do
    spec = WorkerSpec(app=f"cohortbridge.asgi:{side}", log_level=settings.log_level)
    code = Balancer(spec, host, port, workers).run()
    if code:
        raise typer.Exit(code)
