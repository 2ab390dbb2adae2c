"""Database.write: units of work committed whole or not at all, each with its own outcome,
also when SQLite's group writer commits several of them in one transaction."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from cohortbridge.db.engine import Database, WriterLock
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


def _writer_lock(db: Database) -> WriterLock:
    """The lock another server process of the same database would take."""
    if db.dialect != "sqlite":
        pytest.skip("PostgreSQL has no single writer to take turns on")
    database = make_url(db.url).database
    assert database
    return WriterLock(f"{database}-writer")


async def test_writers_of_one_database_take_turns_across_processes(engage_db: Database) -> None:
    other = _writer_lock(engage_db)  # flock: a second open file conflicts like a process
    try:
        other.acquire()
        writing = asyncio.create_task(engage_db.write(_insert("waits")))
        await asyncio.sleep(0.3)
        assert not writing.done()  # the other process's turn
        other.release()
        assert await asyncio.wait_for(writing, 10) == "waits"
        # The turn ends with the COMMIT, a failed unit's too.
        assert other.try_acquire()
        other.release()
        with pytest.raises(Refused):
            await engage_db.write(_insert("refused", fail=True))
        assert other.try_acquire()
    finally:
        other.close()
    assert await engage_db.lookup(_stored) == ["waits"]


async def test_a_write_given_up_while_waiting_for_its_turn_leaves_the_lock_free(
    engage_db: Database,
) -> None:
    other = _writer_lock(engage_db)
    try:
        other.acquire()
        with pytest.raises(TimeoutError):
            await engage_db.write(_insert("late"), acquire_timeout=0.2)
        other.release()
        assert await engage_db.write(_insert("next")) == "next"
        assert other.try_acquire()
    finally:
        other.close()
    assert await engage_db.lookup(_stored) == ["next"]


def _lock_path_taken_by_a_directory(db: Database) -> Path:
    path = Path(f"{make_url(db.url).database}-writer")
    path.unlink(missing_ok=True)
    path.mkdir()  # opening the lock file then fails
    return path


async def test_a_database_beside_which_no_lock_can_be_made_is_still_written(
    engage_db: Database,
) -> None:
    _writer_lock(engage_db)  # skips on PostgreSQL
    taken = _lock_path_taken_by_a_directory(engage_db)
    try:
        fresh = Database.connect(engage_db.url)
        try:
            assert await fresh.write(_insert("unlocked")) == "unlocked"
            assert await fresh.write(_insert("again")) == "again"
        finally:
            await fresh.dispose()
    finally:
        taken.rmdir()
    assert await engage_db.lookup(_stored) == ["again", "unlocked"]


async def _insert_in_transaction(
    db: Database, name: str, acquire_timeout: float | None = None
) -> str:
    async with db.transaction(acquire_timeout) as conn:
        await conn.exec_driver_sql(
            "INSERT INTO datapoints (workspace_id, day, source, count) "
            "VALUES (?, '2026-12-01', 'test', 1)", (name,)
        )  # fmt: skip
    return name


async def test_transactions_take_the_same_turns_as_units(engage_db: Database) -> None:
    """Handlers, jobs and the analytics side write through ``transaction``: their turns are
    handed over as the units' are, not found by polling in SQLite's busy handler."""
    other = _writer_lock(engage_db)
    try:
        other.acquire()
        writing = asyncio.create_task(_insert_in_transaction(engage_db, "waits"))
        await asyncio.sleep(0.3)
        assert not writing.done()  # the other process's turn
        other.release()
        assert await asyncio.wait_for(writing, 10) == "waits"
        assert other.try_acquire()  # the turn ended with the transaction
        with pytest.raises(TimeoutError):
            await _insert_in_transaction(engage_db, "late", acquire_timeout=0.2)
        other.release()
        # A unit and a transaction of one process share the lock without waiting for
        # each other's release.
        assert await engage_db.write(_insert("unit")) == "unit"
        assert await _insert_in_transaction(engage_db, "after") == "after"
        assert other.try_acquire()
    finally:
        other.close()
    assert await engage_db.lookup(_stored) == ["after", "unit", "waits"]
