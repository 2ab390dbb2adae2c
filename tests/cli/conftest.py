"""What the command-line tests share: the environment that points the CLI at the test database."""

from __future__ import annotations

from pathlib import Path

import pytest

from cohortbridge.db.engine import Database


@pytest.fixture
def cli_env(engage_db: Database, tmp_path: Path) -> dict[str, str]:
    return {
        "COHORTBRIDGE_DATA_DIR": str(tmp_path / "var"),
        "COHORTBRIDGE_ENGAGE_DATABASE_URL": engage_db.url,
    }
