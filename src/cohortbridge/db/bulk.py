"""Set-based writes for the hot paths, below SQLAlchemy's per-row parameter processing.

A request of 75 events writes a few hundred rows; building them through SQLAlchemy's typed
``executemany`` costs more Python time than SQLite spends storing them. Here a statement is one
multi-row ``INSERT … VALUES (…), (…) [ON CONFLICT …] [RETURNING …]`` whose SQL text is cached
per dialect and row count, and values are adapted once, by column kind, to what the driver
stores: the same representations SQLAlchemy's types produce, so ORM/Core reads are unaffected.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from itertools import chain
from operator import itemgetter
from typing import Any, Protocol

import orjson
from psycopg.types.json import Jsonb
from sqlalchemy import Date, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import JSON

from cohortbridge.db.types import UTCDateTime
from cohortbridge.db.unit import Executor
from cohortbridge.kit.clock import as_utc

# Bound-parameter ceilings: SQLite's default SQLITE_MAX_VARIABLE_NUMBER, PostgreSQL's protocol.
MAX_PARAMS = {"sqlite": 32766, "postgresql": 65535}
# PostgreSQL gets one array per column; this many rows per statement bounds its size.
ARRAY_ROWS = 20_000
Updates = Callable[[str], dict[str, str]]


@lru_cache(maxsize=4096)
def _sqlite_time(value: datetime) -> str:
    # SQLAlchemy's SQLite DATETIME storage format, naive UTC.
    return as_utc(value).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _adapter(kind: str, dialect: str) -> Callable[[Any], Any] | None:
    if dialect == "sqlite":
        return {
            "time": lambda v: None if v is None else _sqlite_time(v),
            "date": lambda v: None if v is None else v.isoformat(),
            "json": lambda v: None if v is None else orjson.dumps(v).decode(),
        }.get(kind)
    if kind == "json":
        return lambda v: None if v is None else Jsonb(v, dumps=_pg_json)
    return None


def _pg_json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _kind(table: Table, column: str) -> str:
    col_type = table.c[column].type
    if isinstance(col_type, UTCDateTime):
        return "time"
    if isinstance(col_type, Date):
        return "date"
    if isinstance(col_type, JSON) or isinstance(getattr(col_type, "impl", None), JSON):
        return "json"
    return "plain"


def greatest(dialect: str, a: str, b: str) -> str:
    return f"GREATEST({a}, {b})" if dialect == "postgresql" else f"max({a}, {b})"


def least(dialect: str, a: str, b: str) -> str:
    return f"LEAST({a}, {b})" if dialect == "postgresql" else f"min({a}, {b})"


@dataclass(frozen=True)
class BulkInsert:
    """A multi-row INSERT with an optional ON CONFLICT clause and RETURNING list.

    ``updates(dialect)`` gives ``{column: SQL expression}`` for DO UPDATE, where the expression
    may use ``<table>.<column>`` (the stored row) and ``excluded.<column>`` (the new one).
    Without ``updates`` a conflict target means DO NOTHING.
    """

    table: Table
    columns: tuple[str, ...]
    conflict: tuple[str, ...] | None = None
    updates: Updates | None = None
    returning: tuple[str, ...] = ()

    def _sql(self, dialect: str, nrows: int) -> str:
        return _render(self, dialect, nrows)

    def rows_per_statement(self, dialect: str) -> int:
        return max(1, MAX_PARAMS.get(dialect, 999) // len(self.columns))

    def adapters(self, dialect: str) -> list[Callable[[Any], Any] | None]:
        return _adapters(self.table, self.columns, dialect)

    def execute_dicts(self, ex: Executor, rows: Sequence[dict[str, Any]]) -> list[Any]:
        pick = itemgetter(*self.columns)
        return self.execute(ex, [pick(row) for row in rows])

    def execute(self, ex: Executor, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """Insert ``rows`` (tuples in ``columns`` order); returns the RETURNING rows."""
        return self.bind(ex.dialect, rows).execute(ex)

    def bind(
        self, dialect: str, rows: Sequence[Sequence[Any]], id_column: str | None = None
    ) -> Bound:
        """``rows`` adapted for ``dialect``'s driver, to run later (``Bound``); ``id_column``
        names the column whose stand-in ids ``Bound.with_ids`` replaces."""
        at = None if id_column is None else self.columns.index(id_column)
        return Bound(self, dialect, _adapted(rows, self.adapters(dialect)), at)

    def bind_dicts(
        self, dialect: str, rows: Sequence[dict[str, Any]], id_column: str | None = None
    ) -> Bound:
        pick = itemgetter(*self.columns)
        return self.bind(dialect, [pick(row) for row in rows], id_column)

    def run(self, ex: Executor, adapted: Sequence[Sequence[Any]]) -> list[Any]:
        """Insert rows already adapted for ``ex``'s driver (``bind``)."""
        if not adapted:
            return []
        dialect = ex.dialect
        if dialect == "postgresql":
            return self._execute_arrays(ex, adapted)
        if not self.returning:
            # One single-row statement, prepared once, stepped per row by the driver in C.
            ex.many(self._sql(dialect, 1), adapted)
            return []
        returned: list[Any] = []
        step = self.rows_per_statement(dialect)
        for start in range(0, len(adapted), step):
            chunk = adapted[start : start + step]
            sql = self._sql(dialect, len(chunk))
            returned.extend(ex.rows(sql, list(chain.from_iterable(chunk))))
        return returned

    def _execute_arrays(self, ex: Executor, rows: Sequence[Sequence[Any]]) -> list[Any]:
        # One array per column: the statement's text is the same for any number of rows, so
        # psycopg parses it once and PostgreSQL may prepare it; measured twice as fast as a
        # multi-row VALUES of 1,000 rows.
        returned: list[Any] = []
        sql = _render_arrays(self)
        for start in range(0, len(rows), ARRAY_ROWS):
            params = [list(c) for c in zip(*rows[start : start + ARRAY_ROWS], strict=True)]
            if self.returning:
                returned.extend(ex.rows(sql, params))
            else:
                ex.run(sql, params)
        return returned


class _Statement(Protocol):
    def run(self, ex: Executor, adapted: Sequence[Sequence[Any]]) -> list[Any]: ...


@dataclass(frozen=True)
class Bound:
    """A statement and its rows, already adapted for one dialect's driver.

    Binding is Python work (picking, converting times and documents); running a ``Bound`` is
    only the driver's. A /users/track request on SQLite binds its writes before it waits for
    the single writer, so that the writer's turn is spent writing.
    """

    statement: _Statement
    dialect: str
    rows: Sequence[Sequence[Any]]
    # The column of the rows' ids that may still be stand-ins (``with_ids``).
    id_column: int | None = None

    def execute(self, ex: Executor) -> list[Any]:
        if ex.dialect != self.dialect:
            raise ValueError(f"rows bound for {self.dialect}, run on {ex.dialect}")
        return self.statement.run(ex, self.rows)

    def with_ids(self, ids: dict[Any, Any]) -> Bound:
        """The same statement with the stand-ins of ``id_column`` found in ``ids`` replaced
        (as new rows: this one may run again, e.g. when its transaction is retried)."""
        at = self.id_column
        if at is None or not ids:
            return self
        rows = [
            (*row[:at], ids[row[at]], *row[at + 1 :]) if row[at] in ids else row
            for row in self.rows
        ]
        return Bound(self.statement, self.dialect, rows, at)


def _adapted(
    rows: Sequence[Sequence[Any]], adapt: list[Callable[[Any], Any] | None]
) -> Sequence[Sequence[Any]]:
    """``rows`` with each value as the driver stores it, converted column by column: most
    columns need nothing, and a per-value loop in Python cost more than SQLite's writes."""
    if not rows or all(f is None for f in adapt):
        return rows
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
    for i, f in enumerate(adapt):
        if f is not None:
            columns[i] = list(map(f, columns[i]))
    return list(zip(*columns, strict=True))


@lru_cache(maxsize=256)
def _adapters(
    table: Table, columns: tuple[str, ...], dialect: str
) -> list[Callable[[Any], Any] | None]:
    # Column kinds do not change at run time: look them up once per statement shape.
    return [_adapter(_kind(table, c), dialect) for c in columns]


@lru_cache(maxsize=512)
def _render(spec: BulkInsert, dialect: str, nrows: int) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    name = spec.table.name
    one = "(" + ", ".join(mark for _ in spec.columns) + ")"
    sql = f"INSERT INTO {name} ({', '.join(spec.columns)}) VALUES " + ", ".join([one] * nrows)
    return sql + _tail(spec, dialect)


def _tail(spec: BulkInsert, dialect: str) -> str:
    sql = ""
    if spec.conflict is not None:
        target = ", ".join(spec.conflict)
        if spec.updates is None:
            sql += f" ON CONFLICT ({target}) DO NOTHING"
        else:
            sets = ", ".join(f"{col} = {expr}" for col, expr in spec.updates(dialect).items())
            sql += f" ON CONFLICT ({target}) DO UPDATE SET {sets}"
    if spec.returning:
        sql += " RETURNING " + ", ".join(spec.returning)
    return sql


_PG = postgresql.dialect()  # type: ignore[no-untyped-call]


def _pg_array_type(table: Table, column: str) -> str:
    compiled = table.c[column].type.compile(dialect=_PG)
    # Without its length: an explicit cast to VARCHAR(n) would cut a longer value silently,
    # the assignment to the column refuses it.
    return ("VARCHAR" if compiled.startswith("VARCHAR(") else compiled) + "[]"


@lru_cache(maxsize=256)
def _render_arrays(spec: BulkInsert) -> str:
    arrays = ", ".join(f"%s::{_pg_array_type(spec.table, c)}" for c in spec.columns)
    sql = (
        f"INSERT INTO {spec.table.name} ({', '.join(spec.columns)}) SELECT * FROM unnest({arrays})"
    )
    return sql + _tail(spec, "postgresql")


@dataclass(frozen=True)
class BulkUpdate:
    """``UPDATE table SET a = ?, b = ? WHERE key = ?`` for many rows (driver executemany)."""

    table: Table
    columns: tuple[str, ...]
    key: str

    def execute(self, ex: Executor, rows: Sequence[Sequence[Any]]) -> None:
        """``rows`` are tuples of ``columns`` values followed by the key."""
        self.bind(ex.dialect, rows).execute(ex)

    def bind(self, dialect: str, rows: Sequence[Sequence[Any]]) -> Bound:
        adapt = _adapters(self.table, self.columns, dialect)
        return Bound(self, dialect, _adapted(rows, [*adapt, None]))

    def run(self, ex: Executor, adapted: Sequence[Sequence[Any]]) -> list[Any]:
        if adapted:
            ex.many(_render_update(self, ex.dialect), adapted)
        return []


@dataclass(frozen=True)
class Many:
    """A statement (a ``render`` template) run once per row by the driver's ``executemany``,
    for writes that fit neither ``BulkInsert`` nor ``BulkUpdate``; rows need no adapting."""

    template: str

    def bind(
        self, dialect: str, rows: Sequence[Sequence[Any]], id_column: int | None = None
    ) -> Bound:
        return Bound(self, dialect, rows, id_column)

    def run(self, ex: Executor, adapted: Sequence[Sequence[Any]]) -> list[Any]:
        if adapted:
            ex.many(render(self.template, ex.dialect), adapted)
        return []


@lru_cache(maxsize=64)
def _render_update(spec: BulkUpdate, dialect: str) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    sets = ", ".join(f"{col} = {mark}" for col in spec.columns)
    return f"UPDATE {spec.table.name} SET {sets} WHERE {spec.key} = {mark}"


def marks(dialect: str, count: int) -> str:
    """``?, ?, …`` (SQLite) or ``%s, %s, …`` (psycopg) for ``count`` parameters."""
    mark = "?" if dialect == "sqlite" else "%s"
    return ", ".join([mark] * count)


def fetch_in(
    ex: Executor,
    template: str,
    leading: Sequence[Any],
    values: Sequence[Any],
    chunk: int = 900,
) -> list[Any]:
    """Run ``template`` (with ``{mark}`` for one parameter and ``{marks}`` for the IN list)
    over ``values`` in chunks; the rows of every chunk, concatenated.

    A raw ``IN (…)`` of up to a thousand values costs SQLAlchemy more to compile than the
    database spends answering it; the text here is cached per chunk size. On PostgreSQL
    ``IN ({marks})`` becomes ``= ANY(<one array>)``: psycopg re-parses every statement of more
    than 50 parameters, an array is one.
    """
    rows: list[Any] = []
    if ex.dialect == "postgresql" and _IN_LIST in template:
        cast = _array_type(values)
        sql = _render_any(template, cast)
        for start in range(0, len(values), ARRAY_ROWS):
            part = values[start : start + ARRAY_ROWS]
            # Integers as one array literal: psycopg dumps a list element by element in Python.
            array = "{" + ",".join(map(str, part)) + "}" if cast == _BIGINTS else list(part)
            rows.extend(ex.rows(sql, (*leading, array)))
        return rows
    for start in range(0, len(values), chunk):
        part = values[start : start + chunk]
        sql = _render_in(template, ex.dialect, len(part))
        rows.extend(ex.rows(sql, (*leading, *part)))
    return rows


_IN_LIST = "IN ({marks})"
_BIGINTS = "::BIGINT[]"


def _array_type(values: Sequence[Any]) -> str:
    # The array as the column's own type: psycopg would send the smallest integer type that
    # holds the values, and PostgreSQL filters a cross-type ANY (bigint = integer) by linear
    # search instead of a hash — 0.9 s instead of 20 ms for 1,000 ids over 300,000 rows.
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return _BIGINTS
    if all(isinstance(v, str) for v in values):
        return "::TEXT[]"
    return ""


@lru_cache(maxsize=256)
def _render_any(template: str, cast: str) -> str:
    return template.replace(_IN_LIST, "= ANY({mark}" + cast + ")").format(mark="%s")


@lru_cache(maxsize=256)
def _render_in(template: str, dialect: str, count: int) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    return template.format(mark=mark, marks=marks(dialect, count))


def render(template: str, dialect: str, count: int = 0) -> str:
    """``template`` in the driver's paramstyle (``{mark}``, ``{marks}`` for ``count``)."""
    return _render_in(template, dialect, count)


def fetch_sql(ex: Executor, template: str, params: Sequence[Any], count: int = 0) -> list[Any]:
    """Run ``template`` once (``{mark}`` one parameter, ``{marks}`` ``count`` of them)."""
    return ex.rows(_render_in(template, ex.dialect, count), params)


def run_sql(ex: Executor, template: str, params: Sequence[Any], count: int = 0) -> None:
    """Like ``fetch_sql`` for a statement that returns no rows."""
    ex.run(_render_in(template, ex.dialect, count), params)


def write_time(dialect: str, value: datetime) -> Any:
    """A timestamp as the driver stores it (and hands it back from RETURNING)."""
    if isinstance(value, str):
        return value
    return _sqlite_time(value) if dialect == "sqlite" else as_utc(value)


def read_time(value: Any) -> datetime | None:
    """A timestamp column read raw: naive UTC text on SQLite, a datetime on PostgreSQL."""
    if value is None:
        return None
    if isinstance(value, str):
        return as_utc(datetime.fromisoformat(value))
    return as_utc(value)


def read_json(value: Any) -> Any:
    """A JSON column read raw: text on SQLite, already decoded on PostgreSQL."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value
