"""A write transaction as one synchronous unit of work, on either dialect.

The hot write paths (``/users/track``, the partner cohort import) are written as plain
functions of an ``Executor``: a few raw statements, no awaits in between. On SQLite the writer
runs them directly on its ``sqlite3`` connection (see ``engine.GroupWriter``): one unit costs
no thread handoff per statement, where each aiosqlite call costs one. On PostgreSQL, and on
SQLite outside those paths, ``call`` runs the same function on an ``AsyncConnection`` through
SQLAlchemy's ``run_sync``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

P = ParamSpec("P")
T = TypeVar("T")


class Executor(Protocol):
    """Raw SQL on the connection of the current transaction (driver paramstyle)."""

    @property
    def dialect(self) -> str: ...

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Execute and fetch every row (tuples, indexable by position)."""
        ...

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Execute a statement that returns no rows."""
        ...

    def many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        """Execute once per parameter tuple (the driver's ``executemany``)."""
        ...


class SqliteExecutor:
    """The SQLite writer's own ``sqlite3`` connection, used while the writer is held."""

    dialect = "sqlite"

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._cursor = connection.cursor()

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._cursor.execute(sql, params).fetchall()

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor.execute(sql, params)

    def many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(sql, params)


class ConnectionExecutor:
    """A SQLAlchemy connection (inside ``AsyncConnection.run_sync``)."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection
        self.dialect = connection.dialect.name

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(self._conn.exec_driver_sql(sql, tuple(params)).all())

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.exec_driver_sql(sql, tuple(params))

    def many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        if params:
            self._conn.exec_driver_sql(sql, [tuple(p) for p in params])


Unit = Callable[[Executor], T]


async def call(
    conn: AsyncConnection,
    fn: Callable[Concatenate[Executor, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Run a unit-of-work function on an async connection's current transaction."""

    def sync(connection: Connection) -> T:
        return fn(ConnectionExecutor(connection), *args, **kwargs)

    return await conn.run_sync(sync)
