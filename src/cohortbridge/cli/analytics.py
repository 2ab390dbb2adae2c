"""``analytics``: projects and their event settings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from cohortbridge.cli.runtime import (
    console,
    fail,
    json_value,
    print_json,
    run_in_transaction,
    settings_of,
)
from cohortbridge.cli.streams import app as streams_app

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


cohorts_app = typer.Typer(help="Behavioral and static cohorts.", no_args_is_help=True)
app.add_typer(cohorts_app, name="cohorts")
CohortArg = Annotated[str, typer.Argument(help="The cohort's id (see `cohorts list`).")]
EXAMPLE = ('{"andClauses": [{"orClauses": [{"type": "event", "type_value": "Song Played", '
           '"time_type": "rolling", "time_value": 30}]}]}')  # fmt: skip


def _definition(raw: str) -> Any:
    return json_value(raw, "--definition", EXAMPLE)


def _cohort_run(ctx: typer.Context, work: Any) -> Any:
    from cohortbridge.analytics.http import DashboardError

    try:
        return _run(ctx, work)
    except DashboardError as error:
        hint = " (see `cohorts list`)" if error.status == 404 else ""
        raise fail(f"{error}{hint}", code=1 if error.status == 404 else 2) from error


@cohorts_app.command("create")
def create_cohort(
    ctx: typer.Context,
    project: ProjectOpt,
    name: Annotated[str, typer.Option(help="The cohort's name.")],
    definition: Annotated[str, typer.Option(help=f"JSON or @FILE, e.g. '{EXAMPLE}'")],
    refresh: Annotated[str, typer.Option(help="minute, hourly or daily.")] = "hourly",
    profile_api: Annotated[bool, typer.Option(help="List it in the User Profile API.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Define a behavioral cohort (AND of OR clauses; docs/api.md lists the conditions)."""
    raw = _definition(definition)

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.analytics.cohorts import service
        from cohortbridge.analytics.projects import service as projects

        found = await projects.find(conn, project)
        draft = service.prepare({"name": name, "definition": raw, "refresh": refresh,
                                 "profile_api": profile_api}, creating=True)  # fmt: skip
        return await service.create(conn, found.id, draft)

    created = _cohort_run(ctx, work)
    if as_json:
        print_json({"cohort_id": created["cohortId"]})
    else:
        console.print(f"cohort_id {created['cohortId']}")


@cohorts_app.command("compute")
def compute_cohort(ctx: typer.Context, cohort_id: CohortArg, as_json: JsonOpt = False) -> None:
    """Compute a cohort now: its size, and who entered and left since the last computation."""

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.analytics.cohorts import service
        from cohortbridge.analytics.cohorts.repository import definitions

        row = await definitions.by_public_id(conn, cohort_id)
        if row is None:
            raise service.not_found(cohort_id)
        return await service.compute(conn, row)

    done = _cohort_run(ctx, work)
    if as_json:
        print_json({"size": done.size, "entered": done.entered, "left": done.left,
                    "version": done.version})  # fmt: skip
    else:
        console.print(f"{done.size:,} users (+{done.entered:,} −{done.left:,}), "
                      f"version {done.version}")  # fmt: skip


@cohorts_app.command("list")
def list_cohorts(ctx: typer.Context, project: ProjectOpt, as_json: JsonOpt = False) -> None:
    """The project's cohorts with their size and last computation."""

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.analytics.cohorts.repository import definitions
        from cohortbridge.analytics.projects import service as projects

        found = await projects.find(conn, project)
        return [dict(row) for row in await definitions.listing(conn, found.id)]

    rows = _cohort_run(ctx, work)
    listed = [{"cohort_id": r["id"], "name": r["name"], "kind": r["kind"], "size": r["size"],
               "version": r["version"], "computed_at": r["computed_at"].isoformat()
               if r["computed_at"] else None} for r in rows]  # fmt: skip
    if as_json:
        print_json(listed)
        return
    table = Table("cohort_id", "name", "kind", "size", "computed")
    for item in listed:
        table.add_row(item["cohort_id"], item["name"], item["kind"], f"{item['size']:,}",
                      item["computed_at"] or "never")  # fmt: skip
    console.print(table)


@cohorts_app.command("download")
def download_cohort(
    ctx: typer.Context,
    cohort_id: CohortArg,
    out: Annotated[Path, typer.Option("--out", help="CSV file to write.")],
    prop: Annotated[
        list[str] | None, typer.Option("--prop", help="Repeatable: user properties to add.")
    ] = None,
) -> None:
    """Write the cohort's members as CSV (amplitude_id,user_id,…), as the REST API's file."""
    from cohortbridge.cli.runtime import run_with_database

    async def work(db: Any) -> int:
        from rich.progress import Progress

        from cohortbridge.analytics.cohorts import downloads, service
        from cohortbridge.analytics.cohorts.repository import definitions

        async with db.read() as conn:
            row = await definitions.by_public_id(conn, cohort_id)
        if row is None:
            raise service.not_found(cohort_id)
        with Progress(console=console, transient=True) as progress:
            progress.add_task("writing", total=None)
            job = {"cohort": row["pk"], "props": list(prop) if prop else None}
            return await downloads.write_csv(db, job, out)

    from cohortbridge.analytics.cohorts.service import CohortError

    try:
        rows = run_with_database(settings_of(ctx), "analytics", work)
    except CohortError as error:
        raise fail(f"{error} (see `cohorts list`)") from error
    console.print(f"wrote {rows:,} members to {out}")


@cohorts_app.command("update")
def update_cohort(
    ctx: typer.Context,
    cohort_id: CohortArg,
    profile_api: Annotated[
        str | None, typer.Option("--profile-api", help="on or off: list it in get_cohort_ids.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    definition: Annotated[str | None, typer.Option(help="A new definition: JSON or @FILE.")] = None,
    refresh: Annotated[str | None, typer.Option(help="minute, hourly or daily.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a cohort: its name, definition, refresh, or whether the User Profile API lists it."""
    if profile_api not in (None, "on", "off"):
        raise fail("--profile-api takes on or off", code=2)
    raw = _definition(definition) if definition is not None else None

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.analytics.cohorts import service
        from cohortbridge.analytics.cohorts.repository import definitions

        row = await definitions.by_public_id(conn, cohort_id)
        if row is None:
            raise service.not_found(cohort_id)
        payload: dict[str, Any] = {"name": name, "refresh": refresh,
                                   "profile_api": None if profile_api is None
                                   else profile_api == "on"}  # fmt: skip
        if raw is not None:
            payload["definition"] = raw
        draft = service.prepare({k: v for k, v in payload.items() if v is not None},
                                creating=False)  # fmt: skip
        return await service.update(conn, row["project_id"], cohort_id, draft)

    _cohort_run(ctx, work)
    if as_json:
        print_json({"cohort_id": cohort_id})
    else:
        console.print(f"updated {cohort_id}")


computations_app = typer.Typer(help="Computed user properties.", no_args_is_help=True)
app.add_typer(computations_app, name="computations")
COMPUTATION_EXAMPLE = (
    '{"kind": "aggregation", "aggregate": "sum", "prop": "price", "event_type": "Purchase", '
    '"time_type": "rolling", "time_value": 30}'
)


@computations_app.command("create")
def create_computation(
    ctx: typer.Context,
    project: ProjectOpt,
    name: Annotated[str, typer.Option(help="The user property it becomes.")],
    definition: Annotated[str, typer.Option(help=f"JSON or @FILE, e.g. '{COMPUTATION_EXAMPLE}'")],
    as_json: JsonOpt = False,
) -> None:
    """Define a computation: event count, aggregation (sum/min/max/avg) or first/last value."""
    raw = _definition(definition)
    if not isinstance(raw, dict):
        raise fail(f"--definition must be a JSON object, e.g. '{COMPUTATION_EXAMPLE}'", code=2)

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.analytics.computations import service
        from cohortbridge.analytics.projects import service as projects

        found = await projects.find(conn, project)
        return await service.create(conn, found.id, {**raw, "name": name})

    created = _cohort_run(ctx, work)
    if as_json:
        print_json({"computation_id": created["id"]})
    else:
        console.print(f"computation_id {created['id']}")


@computations_app.command("compute")
def compute_computation(
    ctx: typer.Context,
    computation_id: Annotated[str, typer.Argument(help="The computation's id.")],
    as_json: JsonOpt = False,
) -> None:
    """Compute now: how many users have a value."""

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.analytics.computations import repository, service

        row = await repository.by_public_id(conn, computation_id)
        if row is None:
            raise fail(f"no computation {computation_id!r} (see `computations list`)")
        return await service.compute(conn, row)

    users = _cohort_run(ctx, work)
    if as_json:
        print_json({"users": users})
    else:
        console.print(f"{users:,} users have a value")


@computations_app.command("list")
def list_computations(ctx: typer.Context, project: ProjectOpt, as_json: JsonOpt = False) -> None:
    """The project's computations."""

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.analytics.computations import repository, service
        from cohortbridge.analytics.projects import service as projects

        found = await projects.find(conn, project)
        return [service.listing_object(row) for row in await repository.listing(conn, found.id)]

    listed = _cohort_run(ctx, work)
    if as_json:
        print_json(listed)
        return
    table = Table("id", "name", "kind", "event_type")
    for item in listed:
        table.add_row(item["id"], item["name"], item["kind"], item["event_type"])
    console.print(table)


destinations_app = typer.Typer(help="Destinations (Braze) of a project.", no_args_is_help=True)
syncs_app = typer.Typer(help="Cohort, user property and computation syncs to a destination.",
                        no_args_is_help=True)  # fmt: skip
app.add_typer(destinations_app, name="destinations")
app.add_typer(syncs_app, name="syncs")
app.add_typer(streams_app, name="streams")
SyncArg = Annotated[str, typer.Argument(help="The sync's id (see `syncs create`).")]


def _sync_run(ctx: typer.Context, work: Any) -> Any:
    from cohortbridge.analytics.destinations.logic import InvalidSync
    from cohortbridge.analytics.destinations.service import DestinationError
    from cohortbridge.analytics.traits.logic import InvalidTraitSync

    try:
        return _cohort_run(ctx, work)
    except (InvalidSync, DestinationError, InvalidTraitSync) as error:
        raise fail(str(error), code=2) from error
    except LookupError as error:
        raise fail(str(error)) from error


@destinations_app.command("create")
def create_destination(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="braze")],
    project: ProjectOpt,
    rest_endpoint: Annotated[str, typer.Option(help="engage's (Braze's) REST endpoint.")],
    data_import_key: Annotated[
        str | None, typer.Option(help="The data import key (client secret).")
    ] = None,
    partner_key: Annotated[str | None, typer.Option(help="The partner API key.")] = None,
    rest_api_key: Annotated[str | None, typer.Option(help="A REST API key (streams).")] = None,
    app_id: Annotated[str | None, typer.Option(help="An app id (streams).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a Braze destination: where cohorts (and later events) are sent."""
    if kind != "braze":
        raise fail("the only destination kind is braze", code=2)

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.analytics.destinations import service
        from cohortbridge.analytics.projects import service as projects

        found = await projects.find(conn, project)
        return await service.create_destination(
            conn, found.id, rest_endpoint=rest_endpoint, data_import_key=data_import_key,
            partner_api_key=partner_key, rest_api_key=rest_api_key, app_id=app_id,
        )  # fmt: skip

    created = _sync_run(ctx, work)
    if as_json:
        print_json(created)
    else:
        console.print(f"destination_id {created['destination_id']}")


@destinations_app.command("update")
def update_destination(
    ctx: typer.Context,
    destination_id: Annotated[str, typer.Argument(help="The destination's id.")],
    rest_endpoint: Annotated[str | None, typer.Option(help="A new REST endpoint.")] = None,
    data_import_key: Annotated[str | None, typer.Option(help="A new data import key.")] = None,
    partner_key: Annotated[str | None, typer.Option(help="A new partner API key.")] = None,
    rest_api_key: Annotated[str | None, typer.Option(help="A new REST API key.")] = None,
    app_id: Annotated[str | None, typer.Option(help="A new app id.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Replace a destination's endpoint or keys; its syncs carry on (and converge) with them."""

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.analytics.destinations import service

        return await service.update_destination(conn, destination_id, {
            "rest_endpoint": rest_endpoint, "data_import_key": data_import_key,
            "partner_api_key": partner_key, "rest_api_key": rest_api_key, "app_id": app_id,
        })  # fmt: skip

    updated = _sync_run(ctx, work)
    if as_json:
        print_json(updated)
    else:
        console.print(f"updated {updated['destination_id']}")


@syncs_app.command("create")
def create_sync(
    ctx: typer.Context,
    destination: Annotated[str, typer.Option("--destination", help="The destination's id.")],
    cadence: Annotated[str, typer.Option(help="once, hourly, daily or (cohorts) realtime.")],
    cohort: Annotated[str | None, typer.Option("--cohort", help="A cohort's id.")] = None,
    user_property: Annotated[str | None, typer.Option(
        "--property", help="A user property, synced as the custom attribute of that name.")
    ] = None,
    computation: Annotated[str | None, typer.Option(
        "--computation", help="A computation's id, synced as an attribute of its name.")
    ] = None,
    identifier: Annotated[
        list[str] | None,
        typer.Option("--identifier", help="Repeatable, in priority order: user_id, device_id, "
                     "alias:<label> or property:<name> (property syncs take one; default "
                     "user_id)."),
    ] = None,
    identifier_type: Annotated[str | None, typer.Option(
        help="Property syncs with --identifier property:<name>: external_id, braze_id or email."
    )] = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Sync a cohort (the whole cohort first, then who entered and left), or a user property
    or computation (users active in the last 90 days; then only changed values)."""
    if sum(x is not None for x in (cohort, user_property, computation)) != 1:
        raise fail("give one of --cohort, --property or --computation", code=2)

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.analytics.destinations import service
        from cohortbridge.analytics.traits import service as traits

        if cohort is not None:
            return await service.create_sync(
                conn, cohort_id=cohort, destination_id=destination, cadence=cadence,
                identifiers=identifier or [],
            )  # fmt: skip
        return await traits.create_sync(
            conn, destination_id=destination, cadence=cadence,
            identifier=_trait_identifier(identifier or ["user_id"], identifier_type),
            user_property=user_property, computation_id=computation,
        )  # fmt: skip

    created = _sync_run(ctx, work)
    if as_json:
        print_json(created)
    else:
        console.print(f"sync_id {created['sync_id']}")


def _trait_identifier(given: list[str], kind: str | None) -> dict[str, Any]:
    """The cohort sync's identifier words, as a property sync's mapping."""
    if len(given) != 1:
        raise fail("a property or computation sync takes one --identifier", code=2)
    word = given[0]
    if word == "user_id":
        return {"property": "user_id", "type": kind or "external_id"}
    if word.startswith("alias:"):
        return {"property": "user_id", "type": "user_alias", "alias_label": word[6:]}
    if word.startswith("property:"):
        return {"property": word[9:], "type": kind or "external_id"}
    raise fail(f"--identifier {word!r}: use user_id, alias:<label> or property:<name>", code=2)


@syncs_app.command("run")
def run_sync(ctx: typer.Context, sync_id: SyncArg, as_json: JsonOpt = False) -> None:
    """Run a sync now, with a progress bar."""
    from cohortbridge.cli.runtime import run_with_database

    settings = settings_of(ctx)

    async def work(db: Any) -> Any:
        import httpx
        from rich.progress import BarColumn, MofNCompleteColumn, Progress

        from cohortbridge.analytics.destinations import service
        from cohortbridge.analytics.traits import service as traits

        async with db.read() as conn:
            kind = await _sync_kind(conn, sync_id)
        with Progress(*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(),
                      console=console, transient=as_json) as progress:  # fmt: skip
            task = progress.add_task("syncing", total=None)

            def show(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            async with httpx.AsyncClient(timeout=settings.destination_timeout_s) as http:
                if kind == "trait":
                    return await traits.run_sync(db, sync_id, http, progress=show)
                return await service.run_sync(db, sync_id, http, progress=show)

    try:
        result = run_with_database(settings, "analytics", work)
    except LookupError as error:
        raise fail(f"{error} (see `syncs history`)") from error
    if result is None:
        raise fail("another run holds this sync; try again when it has finished")
    from cohortbridge.analytics.traits.service import TraitRun

    if isinstance(result, TraitRun):
        _show_trait_run(result, as_json)
    else:
        _show_cohort_run(result, as_json)
    if result.status != "succeeded":
        raise typer.Exit(1)


async def _sync_kind(conn: AsyncConnection, sync_id: str) -> str:
    """cohort or trait (a user property or computation sync); LookupError if neither."""
    from cohortbridge.analytics.destinations import repository
    from cohortbridge.analytics.traits import repository as traits

    if await repository.sync(conn, sync_id) is not None:
        return "cohort"
    if await traits.sync(conn, sync_id) is not None:
        return "trait"
    raise LookupError(f"no sync {sync_id!r}")


def _show_cohort_run(result: Any, as_json: bool) -> None:
    body = {
        "status": result.status, "added": result.added, "removed": result.removed,
        "skipped": result.skipped, "rejected": result.rejected, "error": result.error,
    }  # fmt: skip
    if as_json:
        print_json(body)
    else:
        console.print(f"{result.status}: +{result.added:,} −{result.removed:,}, "
                      f"{result.skipped:,} skipped, {result.rejected:,} not in Braze"
                      + (f" — {result.error}" if result.error else ""))  # fmt: skip


def _show_trait_run(result: Any, as_json: bool) -> None:
    body = {
        "status": result.status, "candidates": result.candidates, "sent": result.sent,
        "unchanged": result.unchanged, "skipped": result.skipped, "rejected": result.rejected,
        "error": result.error,
    }  # fmt: skip
    if as_json:
        print_json(body)
    else:
        console.print(f"{result.status}: {result.sent:,} sent of {result.candidates:,} active "
                      f"users, {result.unchanged:,} unchanged, {result.skipped:,} without an "
                      f"identifier or value, {result.rejected:,} rejected"
                      + (f" — {result.error}" if result.error else ""))  # fmt: skip


@syncs_app.command("history")
def sync_history(
    ctx: typer.Context,
    sync_id: SyncArg,
    as_json: JsonOpt = False,
    users_csv: Annotated[
        Path | None, typer.Option("--users-csv", help="Write the latest run's users as CSV.")
    ] = None,
) -> None:
    """The last 14 days of runs: start, end, status, counts and errors."""

    async def work(conn: AsyncConnection) -> Any:
        from datetime import timedelta

        from cohortbridge.analytics.destinations import repository
        from cohortbridge.analytics.traits import repository as traits
        from cohortbridge.analytics.traits.service import run_row
        from cohortbridge.kit.clock import utcnow

        since = utcnow() - timedelta(14)
        if await _sync_kind(conn, sync_id) == "trait":
            return "trait", [run_row(r) for r in await traits.runs(conn, sync_id, since)], []
        runs = [dict(r) for r in await repository.runs(conn, sync_id, since)]
        users = [dict(u) for u in await repository.run_users(conn, runs[0]["id"])] if runs else []
        return "cohort", runs, users

    kind, runs, users = _sync_run(ctx, work)
    if kind == "trait":
        _show_trait_history(runs, as_json)
        return
    if users_csv is not None:
        _write_run_users(users_csv, users)
    listed = [{"run_id": r["id"], "status": r["status"], "cohort_version": r["cohort_version"],
               "started_at": r["started_at"].isoformat(),
               "finished_at": r["finished_at"].isoformat() if r["finished_at"] else None,
               "added": r["added"], "removed": r["removed"], "skipped": r["skipped"],
               "rejected": r["rejected"], "error": r["error"]} for r in runs]  # fmt: skip
    if as_json:
        print_json(listed)
        return
    table = Table("started", "status", "added", "removed", "skipped", "rejected", "error")
    for r in listed:
        table.add_row(r["started_at"], r["status"], str(r["added"]), str(r["removed"]),
                      str(r["skipped"]), str(r["rejected"]), r["error"] or "")  # fmt: skip
    console.print(table)


def _show_trait_history(runs: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json(runs)
        return
    table = Table("started", "status", "active users", "sent", "unchanged", "skipped",
                  "rejected", "error")  # fmt: skip
    for r in runs:
        table.add_row(r["started_at"], r["status"], str(r["candidates"]), str(r["sent"]),
                      str(r["unchanged"]), str(r["skipped"]), str(r["rejected"]),
                      r["error"] or "")  # fmt: skip
    console.print(table)


def _write_run_users(path: Path, users: list[dict[str, Any]]) -> None:
    """Amplitude's sync history export: amplitude_id, operation, mapped property, skip_…"""
    import csv

    with path.open("w", newline="") as sink:
        out = csv.writer(sink)
        out.writerow(["amplitude_id", "operation", "mapped_property", "skip_detected",
                      "skip_reason"])  # fmt: skip
        for user in users:
            skipped = user["skip_reason"]
            out.writerow([user["amplitude_id"], user["operation"], user["value"] or "",
                          "true" if skipped else "false", skipped or ""])  # fmt: skip
