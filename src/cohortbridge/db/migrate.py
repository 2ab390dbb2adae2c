"""Running each side's Alembic migrations from code (``up``, ``serve``, ``db upgrade``, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from cohortbridge.config import Side

MIGRATIONS = {
    "engage": "cohortbridge.engage:migrations",
    "analytics": "cohortbridge.analytics:migrations",
}


def sync_url(url: str) -> str:
    """Alembic runs synchronously: swap the async SQLite driver for the stdlib one."""
    parsed = make_url(url)
    if parsed.drivername == "sqlite+aiosqlite":
        parsed = parsed.set(drivername="sqlite")
    return parsed.render_as_string(hide_password=False)


def alembic_config(side: Side, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS[side])
    cfg.set_main_option("version_table", f"alembic_version_{side}")
    cfg.attributes["url"] = sync_url(url)
    return cfg


def ensure_sqlite_dir(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)


def upgrade(side: Side, url: str, revision: str = "head") -> None:
    ensure_sqlite_dir(url)
    command.upgrade(alembic_config(side, url), revision)


def downgrade(side: Side, url: str, revision: str) -> None:
    command.downgrade(alembic_config(side, url), revision)


def current(side: Side, url: str) -> str | None:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"version_table": f"alembic_version_{side}"}
            )
            return ctx.get_current_revision()
    finally:
        engine.dispose()
