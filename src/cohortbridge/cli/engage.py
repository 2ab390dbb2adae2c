"""``engage``: workspaces, REST API keys and the data-point ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from cohortbridge.cli.runtime import console, fail, print_json, run_in_transaction, settings_of
from cohortbridge.cli.segments import app as segments_app
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


partners_app = typer.Typer(help="Technology partners and their API keys.", no_args_is_help=True)
import_keys_app = typer.Typer(
    help="Data import keys (the partner's client_secret) of a workspace.", no_args_is_help=True
)
cohorts_app = typer.Typer(help="Cohorts imported by partners.", no_args_is_help=True)
app.add_typer(segments_app, name="segments")
app.add_typer(partners_app, name="partners")
app.add_typer(import_keys_app, name="import-keys")
app.add_typer(cohorts_app, name="cohorts")
PartnerOpt = Annotated[str, typer.Option("--partner", help="Partner slug, e.g. amplitude.")]


@partners_app.command("create")
def create_partner(
    ctx: typer.Context,
    partner: PartnerOpt,
    name: Annotated[str | None, typer.Option(help="Display name (new partners).")] = None,
    rotate: Annotated[bool, typer.Option(help="Revoke the partner's older keys.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Register a partner (Amplitude is built in) and issue it a partner API key (shown once)."""

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.engage.partners import service as partners

        return await partners.create_partner_key(conn, partner, name, rotate=rotate)

    result = _run(ctx, work)
    if as_json:
        print_json(result.model_dump())
    else:
        console.print(f"partner_api_key {result.partner_api_key}  (shown once)")


@import_keys_app.command("create")
def create_import_key(
    ctx: typer.Context, workspace: WorkspaceOpt, partner: PartnerOpt, as_json: JsonOpt = False
) -> None:
    """Generate a data import key for the partner to send as client_secret (shown once)."""
    endpoint = settings_of(ctx).public_url("engage")

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.engage.partners import service as partners
        from cohortbridge.engage.workspaces import service as workspaces

        found = await workspaces.get_workspace(conn, workspace)
        return await partners.create_import_key(conn, found["id"], partner, endpoint)

    result = _run(ctx, work)
    if as_json:
        print_json(result.model_dump())
        return
    console.print(f"data_import_key {result.data_import_key}  (shown once)")
    console.print(f"rest_endpoint   {result.rest_endpoint}")


@import_keys_app.command("list")
def list_import_keys(
    ctx: typer.Context, workspace: WorkspaceOpt, partner: PartnerOpt, as_json: JsonOpt = False
) -> None:
    """The partner page: REST endpoint and data import keys (masked), with their status."""
    endpoint = settings_of(ctx).public_url("engage")

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.engage.partners import service as partners
        from cohortbridge.engage.workspaces import service as workspaces

        found = await workspaces.get_workspace(conn, workspace)
        return await partners.partner_page(conn, found["id"], partner, endpoint)

    page = _run(ctx, work)
    if as_json:
        print_json([key.model_dump(mode="json") for key in page.keys])
        return
    console.print(f"{page.display_name} — REST endpoint {page.rest_endpoint}")
    table = Table("id", "key", "status", "created", "last used")
    for key in page.keys:
        used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never"
        created = key.created_at.isoformat(timespec="seconds")
        table.add_row(key.id, key.key, key.status, created, used)
    console.print(table)


@import_keys_app.command("invalidate")
def invalidate_import_key(
    ctx: typer.Context,
    workspace: WorkspaceOpt,
    partner: PartnerOpt,
    key_id: Annotated[str, typer.Option("--id", help="The key's id (see `import-keys list`).")],
) -> None:
    """Invalidate a data import key: the partner's requests with it are refused at once."""

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.engage.partners import service as partners
        from cohortbridge.engage.workspaces import service as workspaces

        found = await workspaces.get_workspace(conn, workspace)
        await partners.invalidate_import_key(conn, found["id"], partner, key_id)

    _run(ctx, work)
    console.print(f"invalidated {key_id}")


@cohorts_app.command("list")
def list_cohorts(ctx: typer.Context, workspace: WorkspaceOpt, as_json: JsonOpt = False) -> None:
    """Cohorts partners imported into the workspace, with their size and last update."""

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.engage.cohorts import service as cohorts
        from cohortbridge.engage.workspaces import service as workspaces

        found = await workspaces.get_workspace(conn, workspace)
        return await cohorts.list_cohorts(conn, found["id"])

    listed = _run(ctx, work)
    fields = {"partner", "cohort_id", "name", "title", "size", "updated_at"}
    if as_json:
        print_json([item.model_dump(mode="json", include=fields) for item in listed])
        return
    table = Table("title", "size", "updated")
    for item in listed:
        table.add_row(item.title, f"{item.size:,}", item.updated_at.isoformat(timespec="seconds"))
    console.print(table)
