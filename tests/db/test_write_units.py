"""Database.write: units of work committed whole or not at all, each with its own outcome,
also when SQLite's group writer commits several of them in one transaction."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cohortbridge.db.engine import Database
from cohortbridge.db.unit import Executor


class Refused(Exception):
    pass


def _mark(value: str) -> str:
    return "?" if value == "sqlite" else "%s"


def _insert(name: str, fail: bool = False) -> Any:
    def unit(ex: Executor) -> str:
        mark = _mark(ex.dialect)
        ex.run(f"INSERT INTO datapoints (workspace_id, day, source, count) VALUES "
               f"({mark}, '2026-12-01', 'test', 1)", (name,))  # fmt: skip
        if fail:
            raise Refused(name)
        return name

    return unit


def _stored(ex: Executor) -> list[str]:
    return [row[0] for row in ex.rows("SELECT workspace_id FROM datapoints ORDER BY 1")]


async def test_each_unit_gets_its_own_outcome(engage_db: Database) -> None:
    results = await asyncio.gather(
        engage_db.write(_insert("a")),
        engage_db.write(_insert("b", fail=True)),
        engage_db.write(_insert("c")),
        return_exceptions=True,
    )
    assert results[0] == "a" and results[2] == "c"
    assert isinstance(results[1], Refused) and str(results[1]) == "b"
    # The failed unit's own write is rolled back; the others' are committed.
    assert await engage_db.lookup(_stored) == ["a", "c"]


async def test_a_unit_waiting_past_its_bound_never_runs(engage_db: Database) -> None:
    if engage_db.dialect != "sqlite":
        pytest.skip("PostgreSQL has no single writer to wait for")
    async with engage_db.transaction():  # another writer holds the database
        with pytest.raises(TimeoutError):
            await engage_db.write(_insert("late"), acquire_timeout=0.2)
    assert await engage_db.write(_insert("next")) == "next"
    assert await engage_db.lookup(_stored) == ["next"]
