"""Where SQLite and PostgreSQL differ: upserts, greatest/least, row locks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert


def insert_for(dialect: str, table: Table) -> Any:
    """An INSERT that supports ``on_conflict_do_*`` on this dialect."""
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)


def greatest(dialect: str, a: Any, b: Any) -> ColumnElement[Any]:
    # SQLite's two-argument max()/min() are scalar functions.
    return func.greatest(a, b) if dialect == "postgresql" else func.max(a, b)


def least(dialect: str, a: Any, b: Any) -> ColumnElement[Any]:
    return func.least(a, b) if dialect == "postgresql" else func.min(a, b)


def upsert(
    dialect: str,
    table: Table,
    keys: Sequence[str],
    updates: Callable[[Any], dict[str, Any]],
) -> Insert:
    """INSERT … ON CONFLICT (keys) DO UPDATE SET updates(excluded).

    The caller aggregates rows so that one statement never touches a key twice (PostgreSQL
    refuses that), and sorts them so concurrent writers lock rows in the same order.
    """
    stmt = insert_for(dialect, table)
    return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=list(keys), set_=updates(stmt.excluded)
    )


def insert_ignore(dialect: str, table: Table, keys: Sequence[str]) -> Insert:
    stmt = insert_for(dialect, table)
    return stmt.on_conflict_do_nothing(index_elements=list(keys))  # type: ignore[no-any-return]
