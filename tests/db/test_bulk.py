"""BulkInsert on both dialects: every column kind stored as SQLAlchemy stores it, RETURNING in
row order, conflicts, and (PostgreSQL, which sends one array per column) no value cut short."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    MetaData,
    String,
    Table,
    Text,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB

from cohortbridge.db.bulk import BulkInsert
from cohortbridge.db.engine import Database
from cohortbridge.db.types import UTCDateTime
from cohortbridge.db.unit import call

metadata = MetaData()
things = Table(
    "bulk_things",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("code", String(4), nullable=True),
    Column("note", Text, nullable=True),
    Column("doc", JSON().with_variant(JSONB(), "postgresql"), nullable=True),
    Column("at", UTCDateTime(), nullable=True),
    Column("day", Date, nullable=True),
    Column("flag", Boolean, nullable=True),
    Column("score", Float, nullable=True),
)
COLUMNS = ("id", "code", "note", "doc", "at", "day", "flag", "score")
UPSERT = BulkInsert(things, COLUMNS, conflict=("id",),
                    updates=lambda _d: {"note": "excluded.note"}, returning=("id", "note"))  # fmt: skip
AT = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)


@pytest.fixture
async def db(engage_db: Database) -> AsyncIterator[Database]:
    async with engage_db.transaction() as conn:
        await conn.run_sync(metadata.create_all)
    yield engage_db
    async with engage_db.transaction() as conn:
        await conn.run_sync(metadata.drop_all)


async def test_every_kind_round_trips_and_returns_in_order(db: Database) -> None:
    rows = [
        (3, "abc", "three", {"a": [1, "x"], "b": None}, AT, date(2026, 12, 1), True, 2.5),
        (1, None, None, None, None, None, None, None),
        (2, "", "two", [1, 2], AT, date(2026, 1, 31), False, -1.0),
    ]
    async with db.transaction() as conn:
        returned = await call(conn, UPSERT.execute, rows)
        assert [tuple(r) for r in returned] == [(3, "three"), (1, None), (2, "two")]
        again = await call(conn, UPSERT.execute, [(1, None, "one", None, None, None, None, None)])
        assert [tuple(r) for r in again] == [(1, "one")]
    async with db.read() as conn:
        stored = {r.id: tuple(r) for r in await conn.execute(select(things))}
    assert stored[3] == rows[0]
    assert stored[1] == (1, None, "one", None, None, None, None, None)
    assert stored[2] == rows[2]


async def test_many_rows_in_one_call(db: Database) -> None:
    rows = [(i, None, f"n{i}", None, None, None, None, None) for i in range(25_000)]
    async with db.transaction() as conn:
        returned = await call(conn, UPSERT.execute, rows)
    assert [r[0] for r in returned] == list(range(25_000))


async def test_a_value_too_long_is_refused_not_cut(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SQLite does not enforce a VARCHAR's length")
    with pytest.raises(Exception, match="too long"):
        async with db.transaction() as conn:
            await call(conn, UPSERT.execute, [(9, "toolong", None, None, None, None, None, None)])
    async with db.read() as conn:
        assert list(await conn.execute(select(things.c.id))) == []


async def test_bound_rows_run_later_with_their_stand_ins_replaced(db: Database) -> None:
    # Bound ahead (a /users/track draft), with stand-in ids -1 and -2 for rows not yet made.
    bound = UPSERT.bind(db.dialect, [(-1, "a", "x", {"k": 1}, AT, None, None, None),
                                     (5, "b", "y", None, None, None, None, None),
                                     (-2, "c", "z", None, None, None, None, None)], "id")  # fmt: skip
    fixed = bound.with_ids({-1: 10, -2: 11})
    assert [row[0] for row in bound.rows] == [-1, 5, -2]  # the original is left as it was
    async with db.transaction() as conn:
        returned = await call(conn, fixed.execute)
    assert [tuple(r) for r in returned] == [(10, "x"), (5, "y"), (11, "z")]
    async with db.read() as conn:
        stored = {r.id: tuple(r) for r in await conn.execute(select(things))}
    assert stored[10] == (10, "a", "x", {"k": 1}, AT, None, None, None)


async def test_bound_rows_refuse_another_dialect(db: Database) -> None:
    other = "postgresql" if db.dialect == "sqlite" else "sqlite"
    bound = UPSERT.bind(other, [(1, None, None, None, None, None, None, None)])
    with pytest.raises(ValueError, match="bound for"):
        async with db.transaction() as conn:
            await call(conn, bound.execute)
    async with db.read() as conn:
        assert list(await conn.execute(select(things.c.id))) == []
