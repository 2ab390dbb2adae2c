"""What every command shares: settings from the context, a database, output.

Heavy modules (SQLAlchemy, Alembic, the apps) are imported inside the functions that need them,
so that ``--help`` and argument errors answer at once instead of after seconds of imports.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import typer
from rich.console import Console

from cohortbridge.config import SIDES, Settings, Side

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from cohortbridge.db.engine import Database

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)


def settings_of(ctx: typer.Context) -> Settings:
    root = ctx.find_root()
    settings: Settings = root.obj
    return settings


def migrate_side(settings: Settings, side: Side) -> None:
    from cohortbridge.db import migrate

    settings.ensure_data_dir()
    migrate.upgrade(side, settings.database_url(side))


def run_in_transaction(
    settings: Settings, side: Side, work: Callable[[AsyncConnection], Awaitable[T]]
) -> T:
    """Migrate, open one transaction, run ``work``, commit: a CLI command owns its transaction."""
    from cohortbridge.db.engine import Database

    migrate_side(settings, side)

    async def main() -> T:
        db = Database.connect(settings.database_url(side))
        try:
            async with db.transaction() as conn:
                return await work(conn)
        finally:
            await db.dispose()

    return asyncio.run(main())


def run_with_database(
    settings: Settings, side: Side, work: Callable[[Database], Awaitable[T]]
) -> T:
    """Migrate and hand ``work`` the database, for commands that open several transactions
    (long reads, exports)."""
    from cohortbridge.db.engine import Database

    migrate_side(settings, side)

    async def main() -> T:
        db = Database.connect(settings.database_url(side))
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def json_value(raw: str, option: str, example: str) -> Any:
    """An option holding JSON, or ``@FILE`` naming a file of JSON; a usage error otherwise."""
    text = raw
    if raw.startswith("@"):
        path = Path(raw[1:])
        if not path.is_file():
            raise fail(f"no such file: {path}", code=2)
        text = path.read_text()
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise fail(f"{option} is not JSON ({error}); e.g. {option} '{example}'", code=2) from error


def fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def side_named(name: str) -> Side:
    for side in SIDES:
        if side == name:
            return side
    raise typer.BadParameter(f"SIDE must be one of {', '.join(SIDES)}, not {name!r}")
