"""``db``: migrations of both databases."""

from __future__ import annotations

from typing import Annotated

import typer

from cohortbridge.cli.runtime import console, settings_of, side_named
from cohortbridge.config import SIDES

app = typer.Typer(help="Database migrations.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(
    ctx: typer.Context,
    side: Annotated[
        str | None, typer.Argument(help="engage, analytics, or both if omitted")
    ] = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply Alembic migrations (both sides unless one is named)."""
    from cohortbridge.db import migrate

    settings = settings_of(ctx)
    settings.ensure_data_dir()
    for name in [side_named(side)] if side else SIDES:
        url = settings.database_url(name)
        migrate.upgrade(name, url, revision)
        console.print(f"{name}: at {migrate.current(name, url)}")


@app.command("current")
def current(ctx: typer.Context) -> None:
    """Show each database's migration revision."""
    from cohortbridge.db import migrate

    settings = settings_of(ctx)
    for name in SIDES:
        url = settings.database_url(name)
        console.print(f"{name}: {migrate.current(name, url) or 'not migrated'}")
