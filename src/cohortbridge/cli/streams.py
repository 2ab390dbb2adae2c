"""``analytics streams``: event streams to a Braze destination (spec amplitude §4.2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from cohortbridge.cli.runtime import (
    console,
    fail,
    json_value,
    print_json,
    run_in_transaction,
    run_with_database,
    settings_of,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

app = typer.Typer(help="Event streams: events (and user changes) forwarded to Braze as they "
                  "arrive.", no_args_is_help=True)  # fmt: skip
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
StreamArg = Annotated[str, typer.Argument(help="The stream's id (see `streams list`).")]
Names = Annotated[list[str] | None, typer.Option()]
WHERE_EXAMPLE = (
    '\'{"prop": "plan", "op": "is", "values": ["pro"]}\' (gp:<name> for a user property)'
)


def _run(ctx: typer.Context, work: Any) -> Any:
    from cohortbridge.analytics.destinations.service import DestinationError
    from cohortbridge.analytics.projects.service import ProjectNotFound
    from cohortbridge.analytics.streams.logic import InvalidStream

    try:
        return run_in_transaction(settings_of(ctx), "analytics", work)
    except (InvalidStream, DestinationError) as error:
        raise fail(str(error), code=2) from error
    except (LookupError, ProjectNotFound) as error:
        raise fail(str(error)) from error


@app.command("create")
def create_stream(
    ctx: typer.Context,
    destination: Annotated[str, typer.Option("--destination", help="A Braze destination with "
                                             "a REST API key and app id.")],
    name: Annotated[str | None, typer.Option(help="A name for the stream.")] = None,
    event_type: Annotated[list[str] | None, typer.Option(
        "--event-type", help="Repeatable: the event types to send (default: all).")] = None,
    where: Annotated[list[str] | None, typer.Option(
        "--where", help=f"Repeatable filter, all must hold: {WHERE_EXAMPLE}.")] = None,
    event_property: Annotated[list[str] | None, typer.Option(
        "--event-property", help="Repeatable: event properties to send.")] = None,
    user_property: Annotated[list[str] | None, typer.Option(
        "--user-property", help="Repeatable: user properties to send with each event.")] = None,
    identifier_property: Annotated[str, typer.Option(
        help="The Amplitude value identifying the user: user_id or a user property.")
    ] = "user_id",
    identifier_type: Annotated[str, typer.Option(
        help="external_id, user_alias, braze_id or email.")] = "external_id",
    alias_label: Annotated[str | None, typer.Option(
        help="The alias label (with --identifier-type user_alias).")] = None,
    update_existing_only: Annotated[bool, typer.Option(
        "--update-existing-only", help="Never create users in Braze.")] = False,
    no_events: Annotated[bool, typer.Option(
        "--no-events", help="Send no events (with --send-users).")] = False,
    send_users: Annotated[bool, typer.Option(
        "--send-users", help="Send changes of --user-attribute properties as attributes.")
    ] = False,
    user_attribute: Annotated[list[str] | None, typer.Option(
        "--user-attribute", help="Repeatable: user properties sent as custom attributes.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Stream events to Braze from now on (no backfill), through a durable outbox."""
    config = {
        "event_types": event_type or None,
        "filters": [json_value(w, "--where", WHERE_EXAMPLE) for w in where or []],
        "event_properties": event_property or [], "user_properties": user_property or [],
        "identifier": {"property": identifier_property, "type": identifier_type,
                       "alias_label": alias_label},
        "update_existing_only": update_existing_only, "send_events": not no_events,
        "send_users": send_users, "user_attributes": user_attribute or [],
    }  # fmt: skip

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.analytics.streams import service

        return await service.create_stream(conn, destination_id=destination, name=name,
                                           config=config)  # fmt: skip

    created = _run(ctx, work)
    if as_json:
        print_json(created)
    else:
        console.print(f"stream_id {created['stream_id']}")


@app.command("list")
def list_streams(
    ctx: typer.Context,
    project: Annotated[str, typer.Option("--project", help="Project name or id.")],
    as_json: JsonOpt = False,
) -> None:
    """A project's streams with their backlog."""

    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.analytics.projects import service as projects
        from cohortbridge.analytics.streams import repository

        found = await projects.find(conn, project)
        return [
            {"stream_id": r["id"], "name": r["name"], "destination": r["destination"],
             "enabled": r["enabled"], **r["config"], **await repository.backlog(conn, r["id"])}
            for r in await repository.listing(conn, found.id)
        ]  # fmt: skip

    listed = _run(ctx, work)
    if as_json:
        print_json(listed)
        return
    table = Table("id", "name", "events", "send users", "enabled", "pending", "dead")
    for r in listed:
        table.add_row(r["stream_id"], r["name"], ", ".join(r["event_types"] or ["all"]),
                      "yes" if r["send_users"] else "no", "yes" if r["enabled"] else "no",
                      str(r["pending"]), str(r["dead"]))  # fmt: skip
    console.print(table)


@app.command("history")
def stream_history(
    ctx: typer.Context,
    stream_id: StreamArg,
    hours: Annotated[int, typer.Option(help="How far back, in hours.")] = 24,
    as_json: JsonOpt = False,
) -> None:
    """Deliveries per minute (forwarded, rejected, retried, given up, latency), the backlog
    and the latest rows engage refused."""

    async def work(conn: AsyncConnection) -> Any:
        from datetime import timedelta

        from cohortbridge.analytics.streams import service
        from cohortbridge.kit.clock import utcnow

        return await service.history(conn, stream_id, utcnow() - timedelta(hours=hours))

    found = _run(ctx, work)
    if as_json:
        print_json(found)
        return
    console.print(f"pending {found['pending']:,} · dead {found['dead']:,}")
    table = Table("minute", "requests", "forwarded", "rejected", "retried", "dead", "avg ms",
                  "max ms")  # fmt: skip
    for m in found["minutes"]:
        table.add_row(m["minute"], *(str(m[k]) for k in ("requests", "forwarded", "rejected",
                      "retried", "dead")), str(m["latency_ms_avg"] or ""),
                      str(m["latency_ms_max"]))  # fmt: skip
    console.print(table)
    for row in found["dead_rows"]:
        console.print(f"[yellow]dead[/yellow] #{row['id']} {row['kind']}: {row['error']}")


@app.command("forward")
def forward_stream(ctx: typer.Context, stream_id: StreamArg, as_json: JsonOpt = False) -> None:
    """Forward the stream's due rows now, with a progress bar (the worker does it every
    second on its own)."""
    settings = settings_of(ctx)

    async def work(db: Any) -> Any:
        import httpx
        from rich.progress import BarColumn, MofNCompleteColumn, Progress

        from cohortbridge.analytics.streams import repository, service

        async with db.read() as conn:
            if await repository.stream(conn, stream_id) is None:
                raise LookupError(f"no stream {stream_id!r} (see `streams list`)")
            total = (await repository.backlog(conn, stream_id))["pending"]
        with Progress(*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(),
                      console=console, transient=as_json) as progress:  # fmt: skip
            task = progress.add_task("forwarding", total=total)

            def show(acked: list[Any], _at: Any) -> None:
                progress.advance(task, len(acked))

            async with httpx.AsyncClient(timeout=settings.destination_timeout_s) as http:
                return await service.forward_stream(db, stream_id, http, on_ack=show)

    try:
        done = run_with_database(settings, "analytics", work)
    except LookupError as error:
        raise fail(str(error)) from error
    body = {"forwarded": done.forwarded, "rejected": done.rejected, "failed": done.failed,
            "dead": done.dead, "requests": done.requests}  # fmt: skip
    if as_json:
        print_json(body)
    else:
        console.print(f"forwarded {done.forwarded:,}, rejected {done.rejected:,}, "
                      f"will retry {done.failed:,}, gave up {done.dead:,}")  # fmt: skip
    if done.failed or done.dead:
        raise typer.Exit(1)


def _set_enabled(ctx: typer.Context, stream_id: str, enabled: bool) -> None:
    async def work(conn: AsyncConnection) -> Any:
        from cohortbridge.analytics.streams import service

        await service.set_enabled(conn, stream_id, enabled)

    _run(ctx, work)
    console.print(f"{'enabled' if enabled else 'disabled'} {stream_id}")


@app.command("disable")
def disable_stream(ctx: typer.Context, stream_id: StreamArg) -> None:
    """Stop taking new events (what the outbox holds stays there)."""
    _set_enabled(ctx, stream_id, False)


@app.command("enable")
def enable_stream(ctx: typer.Context, stream_id: StreamArg) -> None:
    """Take events again, from now on."""
    _set_enabled(ctx, stream_id, True)
