"""``engage segments``: define segments, count them, export their users."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from cohortbridge.cli.runtime import (
    console,
    err_console,
    fail,
    json_value,
    print_json,
    run_in_transaction,
    run_with_database,
    settings_of,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from cohortbridge.db.engine import Database

app = typer.Typer(help="Segments: definitions, sizes and exports.", no_args_is_help=True)
WorkspaceOpt = Annotated[str, typer.Option("--workspace", help="Workspace name or id.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
SegmentArg = Annotated[str, typer.Argument(help="The segment's id (see `segments list`).")]
EXAMPLE = '{"amplitude_cohorts": {"comparison": "includes_value", "value": "COHORT_ID"}}'


def _definition(raw: str) -> Any:
    return json_value(raw, "--filter", EXAMPLE)


def _guarded(settings: Any, work: Any, *, database: bool = False) -> Any:
    """Run the work; Braze-style and lookup errors become a message and an exit code."""
    from cohortbridge.engage.errors import BrazeError, NotFoundError

    try:
        if database:
            return run_with_database(settings, "engage", work)
        return run_in_transaction(settings, "engage", work)
    except BrazeError as error:
        hint = " (see `segments list`)" if error.status == 404 else ""
        raise fail(f"{error.message}{hint}", code=1 if error.status == 404 else 2) from error
    except NotFoundError as error:
        raise fail(str(error)) from error


@app.command("create")
def create(
    ctx: typer.Context,
    workspace: WorkspaceOpt,
    name: Annotated[str, typer.Option(help="The segment's name.")],
    filter_: Annotated[
        str,
        typer.Option("--filter", help=f"The definition as JSON, or @FILE. E.g. '{EXAMPLE}'"),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Define a segment in Braze's filter vocabulary (docs/api.md lists every filter)."""
    definition = _definition(filter_)

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.engage.segments.service import definitions
        from cohortbridge.engage.workspaces import service as workspaces

        found = await workspaces.get_workspace(conn, workspace)
        draft = definitions.prepare_create({"name": name, "filter": definition})
        return await definitions.create(conn, found["id"], draft)

    result = _guarded(settings_of(ctx), work)
    if as_json:
        print_json({"segment_id": result["segment_id"]})
    else:
        console.print(f"segment_id {result['segment_id']}")


@app.command("size")
def size(ctx: typer.Context, segment_id: SegmentArg, as_json: JsonOpt = False) -> None:
    """How many users the segment holds now."""

    async def work(conn: AsyncConnection) -> int:
        from cohortbridge.engage.segments.service import definitions

        row = await definitions.found(conn, None, segment_id)
        return await definitions.size_of(conn, row)

    counted = _guarded(settings_of(ctx), work)
    if as_json:
        print_json({"size": counted})
    else:
        console.print(f"{counted:,} users")


@app.command("list")
def list_segments(ctx: typer.Context, workspace: WorkspaceOpt, as_json: JsonOpt = False) -> None:
    """The workspace's segments (archived ones left out), with their definitions in words."""

    async def work(conn: AsyncConnection) -> list[dict[str, Any]]:
        from cohortbridge.engage.segments.service import definitions
        from cohortbridge.engage.workspaces import service as workspaces

        found = await workspaces.get_workspace(conn, workspace)
        listed: list[dict[str, Any]] = []
        page = 0
        while batch := (await definitions.list_page(conn, found["id"], {"page": page}))["segments"]:
            for item in batch:
                got = await definitions.get(conn, found["id"], {"segment_id": item["id"]})
                listed.append(got["segment"])
            page += 1
        return listed

    listed = _guarded(settings_of(ctx), work)
    if as_json:
        print_json(listed)
        return
    table = Table("id", "name", "definition")
    for item in listed:
        table.add_row(item["id"], item["name"], item["description"])
    console.print(table)


@app.command("export")
def export(
    ctx: typer.Context,
    segment_id: SegmentArg,
    out: Annotated[Path, typer.Option("--out", help="File to write: .zip, else NDJSON.")],
    field: Annotated[
        list[str] | None,
        typer.Option("--field", help="Repeatable: user fields to export (default: all)."),
    ] = None,
) -> None:
    """Write the segment's users as newline-delimited JSON (the /users/export/ids objects)."""
    from cohortbridge.engage.users.logic.export import FIELDS

    fields = list(field or FIELDS)

    async def work(db: Database) -> int:
        from cohortbridge.engage.segments.service import definitions, exports

        async with db.read() as conn:
            row = await definitions.found(conn, None, segment_id)
            total = await definitions.size_of(conn, row)
        with Progress(*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=err_console) as progress:  # fmt: skip
            task = progress.add_task("exporting", total=total)
            if out.suffix == ".zip":
                return await exports.write_zip(
                    db, row, out, fields,
                    on_page=lambda done: progress.update(task, completed=done),
                )  # fmt: skip
            written = 0
            with out.open("wb") as sink:
                async for users, data in exports.pages(db, row, fields):
                    sink.write(data)
                    written += users
                    progress.update(task, completed=written)
            return written

    written = _guarded(settings_of(ctx), work, database=True)
    console.print(f"wrote {written:,} users to {out}")
