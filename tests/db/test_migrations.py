"""The Alembic migrations build exactly the schema the code declares, on both dialects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from cohortbridge.config import SIDES
from cohortbridge.db import migrate
from cohortbridge.engage.tables import metadata as engage_metadata


def _diff(url: str) -> list[Any]:
    engine = create_engine(migrate.sync_url(url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "version_table": "alembic_version_engage"}
            )
            return list(compare_metadata(context, engage_metadata))
    finally:
        engine.dispose()


def test_engage_migrations_match_the_models(engage_template: str) -> None:
    assert _diff(engage_template) == []


def test_engage_migrations_are_at_head(engage_template: str) -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config("engage", engage_template))
    assert migrate.current("engage", engage_template) == script.get_current_head()


def test_both_sides_downgrade_and_upgrade_again(tmp_path: Path) -> None:
    for side in SIDES:
        url = f"sqlite+aiosqlite:///{tmp_path / side}.db"
        migrate.upgrade(side, url)
        migrate.downgrade(side, url, "base")
        assert migrate.current(side, url) is None
        migrate.upgrade(side, url)
        assert migrate.current(side, url) is not None
