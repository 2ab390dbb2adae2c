"""The SQLite connections' settings that the write path's speed rests on."""

from __future__ import annotations

import pytest

from cohortbridge.db.engine import Database


async def test_writer_checkpoints_rarely_and_cuts_the_wal_back(engage_db: Database) -> None:
    if engage_db.dialect != "sqlite":
        pytest.skip("SQLite settings")
    async with engage_db.transaction() as conn:
        settings = {
            name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
            for name in ("journal_mode", "synchronous", "wal_autocheckpoint", "journal_size_limit")
        }
    # synchronous 1 = NORMAL: WAL mode is never corrupted; a power loss (not a crash of the
    # process) may lose the commits since the last checkpoint.
    assert settings == {"journal_mode": "wal", "synchronous": 1, "wal_autocheckpoint": 100_000,
                        "journal_size_limit": 64 * 2**20}  # fmt: skip
