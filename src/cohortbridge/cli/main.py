"""``cohortbridge``: run the servers, migrate, and administer engage and analytics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cohortbridge import __version__
from cohortbridge.cli import analytics as analytics_commands
from cohortbridge.cli import db as db_commands
from cohortbridge.cli import engage as engage_commands
from cohortbridge.cli import serve as serve_commands
from cohortbridge.cli import worker as worker_commands
from cohortbridge.config import Settings

app = typer.Typer(
    name="cohortbridge",
    help="A self-hosted Braze ⇄ Amplitude integration: engage (Braze-compatible) and "
    "analytics (Amplitude-compatible).",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cohortbridge {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Where SQLite files and exports live (default ./var or $COHORTBRIDGE_DATA_DIR).",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    settings = Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    ctx.obj = settings


app.command("up", help=serve_commands.up.__doc__)(serve_commands.up)
app.command("serve", help=serve_commands.serve.__doc__)(serve_commands.serve)
app.command("worker", help=worker_commands.worker.__doc__)(worker_commands.worker)
app.add_typer(db_commands.app, name="db")
app.add_typer(engage_commands.app, name="engage")
app.add_typer(analytics_commands.app, name="analytics")
