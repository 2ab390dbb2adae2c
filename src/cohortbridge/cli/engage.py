"""``engage``: workspaces, REST API keys and the data-point ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from cohortbridge.cli.runtime import console, fail, print_json, run_in_transaction, settings_of
from cohortbridge.engage.errors import NotFoundError
from cohortbridge.engage.workspaces import permissions as perms
from cohortbridge.engage.workspaces.logic import DEFAULT_WORKSPACE

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

# Services are imported inside each command: see cli/runtime.py.

app = typer.Typer(help="Administer engage (the Braze-compatible side).", no_args_is_help=True)
keys_app = typer.Typer(help="REST API keys of a workspace.", no_args_is_help=True)
app.add_typer(keys_app, name="api-keys")

WorkspaceOpt = Annotated[str, typer.Option("--workspace", help="Workspace name or id.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _run(ctx: typer.Context, work: Any) -> Any:
    try:
        return run_in_transaction(settings_of(ctx), "engage", work)
    except NotFoundError as error:
        raise fail(str(error)) from error
    except ValueError as error:
        raise fail(str(error), code=2) from error


@app.command("bootstrap")
def bootstrap(
    ctx: typer.Context,
    workspace: Annotated[
        str, typer.Option(help="Workspace name; reused if it exists.")
    ] = DEFAULT_WORKSPACE,
    as_json: JsonOpt = False,
) -> None:
    """Create (or reuse) a workspace with one app and a REST API key holding every permission."""
    endpoint = settings_of(ctx).public_url("engage")

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.engage.workspaces import service as workspaces

        return await workspaces.bootstrap(conn, workspace, endpoint)

    result = _run(ctx, work)
    if as_json:
        print_json(result.model_dump())
        return
    console.print(f"workspace_id  {result.workspace_id}\napp_id        {result.app_id}")
    console.print(f"rest_api_key  {result.rest_api_key}  (shown once)")
    console.print(f"rest_endpoint {result.rest_endpoint}")


@keys_app.command("create")
def create_key(
    ctx: typer.Context,
    workspace: WorkspaceOpt,
    permission: Annotated[
        list[str],
        typer.Option("--permission", help=f"Repeatable. Known: {', '.join(perms.ALL)}"),
    ],
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create a REST API key with the given permissions (shown once, stored hashed)."""

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.engage.workspaces import service as workspaces

        found = await workspaces.get_workspace(conn, workspace)
        return await workspaces.create_api_key(conn, found["id"], permission, name)

    result = _run(ctx, work)
    if as_json:
        print_json({"rest_api_key": result.rest_api_key})
    else:
        console.print(f"rest_api_key {result.rest_api_key}  (shown once)")


@keys_app.command("list")
def list_keys(ctx: typer.Context, workspace: WorkspaceOpt, as_json: JsonOpt = False) -> None:
    """List a workspace's REST API keys (masked)."""

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.engage.workspaces import service as workspaces

        found = await workspaces.get_workspace(conn, workspace)
        return await workspaces.list_api_keys(conn, found["id"])

    listed = _run(ctx, work)
    if as_json:
        print_json([item.model_dump(mode="json") for item in listed])
        return
    table = Table("id", "name", "key", "permissions", "created", "last seen")
    for item in listed:
        table.add_row(
            item.id, item.name, item.key, ", ".join(item.permissions),
            item.created_at.isoformat(timespec="seconds"),
            item.last_seen_at.isoformat(timespec="seconds") if item.last_seen_at else "never",
        )  # fmt: skip
    console.print(table)


@app.command("workspaces")
def list_workspaces(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List workspaces."""
    from cohortbridge.engage.workspaces import service as workspaces

    listed = _run(ctx, workspaces.list_workspaces)
    if as_json:
        print_json([item.model_dump(mode="json") for item in listed])
        return
    for item in listed:
        console.print(f"{item.id}  {item.name}")


@app.command("datapoints")
def show_datapoints(ctx: typer.Context, workspace: WorkspaceOpt, as_json: JsonOpt = False) -> None:
    """Data points used by a workspace, per UTC day and source (spec braze §6)."""

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.engage.datapoints import service as datapoints
        from cohortbridge.engage.workspaces import service as workspaces

        found = await workspaces.get_workspace(conn, workspace)
        return {"workspace_id": found["id"], **await datapoints.report(conn, found["id"])}

    result = _run(ctx, work)
    if as_json:
        print_json(result)
        return
    table = Table("day", "source", "data points")
    for row in result["days"]:
        table.add_row(row["day"], row["source"], f"{row['count']:,}")
    console.print(table)
    console.print(f"total {result['total']:,}")
