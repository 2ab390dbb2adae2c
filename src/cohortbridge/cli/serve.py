"""``up`` and ``serve``: the HTTP servers."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

from cohortbridge.cli.runtime import console, migrate_side, settings_of, side_named
from cohortbridge.config import SIDES, Settings, Side

if TYPE_CHECKING:
    import uvicorn


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


def up(ctx: typer.Context) -> None:
    """Run everything in one process on the embedded default: engage on :8400 and analytics
    on :8401 (migrating both databases first)."""
    settings = settings_of(ctx)
    for side in SIDES:
        migrate_side(settings, side)
    engage = _server(settings, "engage", settings.engage_host, settings.engage_port)
    analytics = _server(settings, "analytics", settings.analytics_host, settings.analytics_port)
    console.print(
        f"engage    → {settings.public_url('engage')}\n"
        f"analytics → {settings.public_url('analytics')}\n"
        f"data      → {settings.data_dir.resolve()}\n"
        "Create credentials with `cohortbridge engage bootstrap --json`. Ctrl-C stops."
    )

    async def both() -> None:
        await asyncio.gather(engage.serve(), analytics.serve())

    asyncio.run(both())


def serve(
    ctx: typer.Context,
    side: Annotated[str, typer.Argument(help="engage or analytics")],
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default 8400 / 8401).")] = None,
) -> None:
    """Run one side's API server (stateless; run several behind a load balancer)."""
    name = side_named(side)
    settings = settings_of(ctx)
    migrate_side(settings, name)
    default_port = settings.engage_port if name == "engage" else settings.analytics_port
    server = _server(settings, name, host, port or default_port)
    asyncio.run(server.serve())
