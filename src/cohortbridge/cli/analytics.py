"""``analytics``: projects and their event settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from cohortbridge.cli.runtime import console, fail, print_json, run_in_transaction, settings_of

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

app = typer.Typer(help="Administer analytics (the Amplitude-compatible side).",
                  no_args_is_help=True)  # fmt: skip
project_app = typer.Typer(help="Projects and their keys.", no_args_is_help=True)
events_app = typer.Typer(help="Event types of a project.", no_args_is_help=True)
app.add_typer(project_app, name="project")
app.add_typer(events_app, name="event-types")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ProjectOpt = Annotated[str, typer.Option("--project", help="Project name or id.")]


def _run(ctx: typer.Context, work: Any) -> Any:
    from cohortbridge.analytics.projects.service import ProjectNotFound

    try:
        return run_in_transaction(settings_of(ctx), "analytics", work)
    except ProjectNotFound as error:
        raise fail(str(error)) from error
    except ValueError as error:
        raise fail(str(error), code=2) from error


@project_app.command("create")
def create_project(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="The project's name (unique).")],
    as_json: JsonOpt = False,
) -> None:
    """Create a project: its API key (for SDKs) and secret key (shown once, stored hashed)."""

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.analytics.projects import service as projects

        return await projects.create_project(conn, name)

    created = _run(ctx, work)
    if as_json:
        print_json(created.model_dump())
        return
    console.print(f"project_id {created.project_id}\napi_key    {created.api_key}")
    console.print(f"secret_key {created.secret_key}  (shown once)")


@project_app.command("list")
def list_projects(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List projects with their API keys."""

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.analytics.projects import service as projects

        return await projects.list_projects(conn)

    listed = _run(ctx, work)
    if as_json:
        print_json([item.model_dump() for item in listed])
        return
    table = Table("project_id", "name", "api_key")
    for item in listed:
        table.add_row(str(item.project_id), item.name, item.api_key)
    console.print(table)


@events_app.command("set-active")
def set_active(
    ctx: typer.Context,
    project: ProjectOpt,
    event_type: Annotated[str, typer.Argument(help="The event type, e.g. 'Push Sent'.")],
    active: Annotated[bool, typer.Option("--active/--inactive", help="Mark it active or not.")],
) -> None:
    """Mark an event type inactive (it no longer makes users active) or active again."""

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.analytics.projects import service as projects

        found = await projects.find(conn, project)
        await projects.set_event_activity(conn, found.id, event_type, active)

    _run(ctx, work)
    console.print(f"{event_type!r} is {'active' if active else 'inactive'}")
