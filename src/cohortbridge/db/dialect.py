"""Where SQLite and PostgreSQL differ: upserts, greatest/least, row locks, JSON documents."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, Literal

import orjson
from sqlalchemy import (
    ColumnElement,
    Float,
    String,
    Table,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    null,
    or_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
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


# JSON documents (custom attributes): SQLite ≥ 3.38 and PostgreSQL share the ``->``/``->>``
# operators with a key on the right; they differ in type names, casts, containment and regex.
JsonKind = Literal["string", "number", "boolean", "array"]
_SQLITE_KINDS: dict[str, tuple[str, ...]] = {
    "string": ("text",), "number": ("integer", "real"), "boolean": ("true", "false"),
    "array": ("array",),
}  # fmt: skip
_PG_KINDS = {"string": "string", "number": "number", "boolean": "boolean", "array": "array"}


def json_member(doc: Any, key: str) -> ColumnElement[Any]:
    """The value under ``key`` as JSON (SQL NULL when the key is missing)."""
    return doc.op("->")(literal(key, String()))  # type: ignore[no-any-return]


def json_is(dialect: str, member: Any, kind: JsonKind) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return func.jsonb_typeof(member) == _PG_KINDS[kind]
    return func.json_type(member).in_(_SQLITE_KINDS[kind])


def json_text(dialect: str, doc: Any, key: str) -> ColumnElement[Any]:
    """A string member as SQL text (NULL unless it is a JSON string)."""
    member = json_member(doc, key)
    value = doc.op("->>")(literal(key, String()))
    return case((json_is(dialect, member, "string"), value), else_=null())


def json_number(dialect: str, doc: Any, key: str) -> ColumnElement[Any]:
    """A number member as an SQL number (NULL unless it is a JSON number).

    The CASE guards the cast on PostgreSQL, which would fail on a string.
    """
    member = json_member(doc, key)
    value = doc.op("->>")(literal(key, String()))
    if dialect == "postgresql":
        value = cast(value, Float())
    return case((json_is(dialect, member, "number"), value), else_=null())


def json_time(dialect: str, doc: Any, key: str) -> ColumnElement[Any]:
    """The ISO text of a time member stored as ``{"$time": "…Z"}``."""
    path = "$time" if dialect == "postgresql" else '$."$time"'
    return json_member(doc, key).op("->>")(literal(path, String()))


def json_array_has(dialect: str, doc: Any, key: str, value: str | float | bool) -> Any:
    """Whether the member is an array holding ``value`` (same JSON type and value)."""
    member = json_member(doc, key)
    if dialect == "postgresql":
        wanted = cast(literal(orjson.dumps([value]).decode(), String()), JSONB())
        return and_(json_is(dialect, member, "array"), member.op("@>")(wanted))
    items = func.json_each(member).table_valued("value", "type").alias("item")
    if isinstance(value, bool):
        match = items.c.type == ("true" if value else "false")
    else:
        kinds = ("text",) if isinstance(value, str) else ("integer", "real")
        match = and_(items.c.type.in_(kinds), items.c.value == value)
    return and_(json_is(dialect, member, "array"), exists().select_from(items).where(match))


def json_matches(dialect: str, doc: Any, key: str, pattern: str) -> Any:
    """A string member, or any string in an array member, matches ``pattern`` (ignoring case)."""
    member = json_member(doc, key)
    if dialect == "postgresql":
        empty: ColumnElement[Any] = literal_column("'[]'::jsonb")
        as_array = case((json_is(dialect, member, "array"), member), else_=empty)
        items = func.jsonb_array_elements_text(as_array).table_valued("value").alias("item")
        in_array = exists().select_from(items).where(items.c.value.op("~*")(pattern))
        return or_(json_text(dialect, doc, key).op("~*")(pattern), in_array)
    items = func.json_each(member).table_valued("value", "type").alias("item")
    in_array = (
        exists()
        .select_from(items)
        .where(items.c.type == "text", func.cb_regexp(pattern, items.c.value) == 1)
    )
    scalar = func.cb_regexp(pattern, json_text(dialect, doc, key)) == 1
    return or_(scalar, and_(json_is(dialect, member, "array"), in_array))


def regexp_ignoring_case(pattern: str | None, value: Any) -> int | None:
    """SQLite's ``cb_regexp(pattern, value)``, registered on every connection (engine.py)."""
    if pattern is None or not isinstance(value, str):
        return None
    return 1 if _compiled(pattern).search(value) else 0


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def json_as_text(dialect: str, member: Any) -> Any:
    """A JSON value as the text of its JSON form on SQLite (``"x"``, ``[]``, ``true``); on
    PostgreSQL a scalar's bare text (``x``, ``true``) and a container's JSON text."""
    if dialect == "postgresql":
        return member.op("#>>")(literal_column("'{}'::text[]"))
    return member


async def reserve_ids(
    conn: Any, table: str, column: str, count: int, *, retired: tuple[str, str] | None = None
) -> list[int]:
    """``count`` fresh values of an auto-increment key, known before the rows are inserted.

    PostgreSQL draws them from the column's sequence; SQLite continues after the largest key,
    which is safe because the caller holds SQLite's single write lock (``BEGIN IMMEDIATE``).
    ``retired`` names a (table, column) of keys whose rows were deleted: they are never reused.
    """
    if count <= 0:
        return []
    if conn.dialect.name == "postgresql":
        result = await conn.exec_driver_sql(
            f"SELECT nextval(pg_get_serial_sequence('{table}', '{column}')) "
            "FROM generate_series(1, %s)",
            (count,),
        )
        return [int(row[0]) for row in result.all()]
    sql = f"SELECT COALESCE(MAX({column}), 0) FROM {table}"
    if retired is not None:
        sql = f"SELECT MAX(({sql}), (SELECT COALESCE(MAX({retired[1]}), 0) FROM {retired[0]}))"
    result = await conn.exec_driver_sql(sql)
    start = int(result.scalar_one()) + 1
    return list(range(start, start + count))


def json_as_string(dialect: str, doc: Any, key: str) -> ColumnElement[Any]:
    """A scalar member as text, the same on both dialects: ``"x"`` → x, ``5`` → 5,
    ``true`` → true (Amplitude compares property values as strings)."""
    member = json_member(doc, key)
    if dialect == "postgresql":
        scalar = func.jsonb_typeof(member).in_(("string", "number", "boolean"))
        return case((scalar, doc.op("->>")(literal(key, String()))), else_=null())
    kind = func.json_type(member)
    return case(
        (kind == "true", literal("true")),
        (kind == "false", literal("false")),
        (kind.in_(("text", "integer", "real")), cast(doc.op("->>")(literal(key, String())),
                                                      String())),
        else_=null(),
    )  # fmt: skip


def plus_days(dialect: str, moment: Any, days: float) -> ColumnElement[Any]:
    """A timestamp column moved by ``days`` (fractions allowed)."""
    if dialect == "postgresql":
        return moment + literal_column(f"interval '{float(days) * 86400:.0f} seconds'")  # type: ignore[no-any-return]
    # SQLite stores 'YYYY-MM-DD HH:MM:SS.ffffff'; strftime keeps that shape, so text compares.
    return func.strftime("%Y-%m-%d %H:%M:%f000", moment, f"+{float(days) * 86400:.0f} seconds")


async def fresh_id_table(conn: Any, name: str, extra: str = "") -> None:
    """An empty temporary table ``name(amplitude_id BIGINT PRIMARY KEY{extra})`` for this
    transaction (the set being computed, diffed against stored rows)."""
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql(
            f"CREATE TEMP TABLE IF NOT EXISTS {name} (amplitude_id BIGINT PRIMARY KEY{extra}) "
            "ON COMMIT DELETE ROWS"
        )
    else:
        await conn.exec_driver_sql(
            f"CREATE TEMP TABLE IF NOT EXISTS {name} (amplitude_id INTEGER PRIMARY KEY{extra})"
        )
    await conn.exec_driver_sql(f"DELETE FROM {name}")
