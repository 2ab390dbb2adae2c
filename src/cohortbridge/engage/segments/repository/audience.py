"""A segment definition compiled to one SQL condition on ``profiles`` (spec braze §5.4).

Evaluation runs in the database on both dialects: every filter becomes a column expression
(correlated subqueries on the per-profile event and purchase history, membership subqueries on
imported cohorts), so a segment's size is one ``COUNT(*)`` and an export pages through ids.

Every leaf is two-valued (true or false, never NULL), so ``NOT`` is the complement of the set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import singledispatch
from typing import Any

from sqlalchemy import (
    Select,
    String,
    and_,
    except_,
    false,
    func,
    intersect,
    literal,
    literal_column,
    not_,
    or_,
    select,
    text,
    union,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from cohortbridge.db import dialect as d
from cohortbridge.engage.cohorts.models import cohort_members, cohorts
from cohortbridge.engage.segments.logic import tree as t
from cohortbridge.engage.users.logic.times import format_time
from cohortbridge.engage.users.models import (
    profile_event_days,
    profile_event_stats,
    profile_purchase_days,
    profile_purchase_stats,
    profiles,
)

Condition = ColumnElement[bool]
p = profiles.c
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Scope:
    """What a compilation needs besides the tree: where and when it is evaluated."""

    dialect: str
    workspace_id: str
    now: datetime
    # The trees of the segments a "Segment Membership" filter names.
    segments: Mapping[str, t.Node] = field(default_factory=dict)


def condition(node: t.Node, scope: Scope) -> Condition:
    return _compile(node, scope)


def _sure(expr: Any) -> Condition:
    """NULL (an unknown comparison: no value) counts as false."""
    return func.coalesce(expr, false())


@singledispatch
def _compile(node: object, scope: Scope) -> Condition:
    raise TypeError(f"cannot compile {type(node).__name__}")


# Subqueries on the event and purchase history cost most: tested last, they run only for the
# profiles the cheaper conditions let through (SQLite evaluates AND terms in order).
_COSTLY = (t.EventCount, t.EventTime, t.PurchaseCount, t.PurchaseTime, t.MoneySpent,
           t.SegmentMember, t.And, t.Or, t.Not)  # fmt: skip


def _cost(node: t.Node) -> int:
    if isinstance(node, t.CohortMember):
        return 0  # membership drives the query: first
    return 2 if isinstance(node, _COSTLY) else 1


@_compile.register
def _and(node: t.And, scope: Scope) -> Condition:
    ordered = sorted(node.items, key=_cost)
    return and_(*(_compile(item, scope) for item in ordered))


@_compile.register
def _or(node: t.Or, scope: Scope) -> Condition:
    return or_(*(_compile(item, scope) for item in node.items))


@_compile.register
def _not(node: t.Not, scope: Scope) -> Condition:
    return not_(_compile(node.item, scope))


@_compile.register
def _cohort(node: t.CohortMember, scope: Scope) -> Condition:
    m, c = cohort_members.c, cohorts.c
    members = (
        select(m.profile_id)
        .join(cohorts, c.id == m.cohort)
        .where(
            c.workspace_id == scope.workspace_id,
            c.partner == node.partner,
            c.cohort_id == node.cohort_id,
        )
    )
    return p.id.in_(members) if node.include else p.id.not_in(members)


@_compile.register
def _segment(node: t.SegmentMember, scope: Scope) -> Condition:
    referenced = scope.segments.get(node.segment_id)
    # A segment that names others cannot be named (service rule), so this never recurses deeper.
    inner = _compile(referenced, scope) if referenced is not None else false()
    return inner if node.include else not_(inner)


# Custom attributes -----------------------------------------------------------------------------


def _ordered(value: Any, op: t.NumberOp, wanted: Any) -> Any:
    return {
        "equals": value == wanted, "not_equal": value != wanted, "greater_than": value > wanted,
        "greater_than_or_equal_to": value >= wanted, "less_than": value < wanted,
        "less_than_or_equal_to": value <= wanted,
    }[op]  # fmt: skip


@_compile.register
def _number(node: t.NumberAttr, scope: Scope) -> Condition:
    number = d.json_number(scope.dialect, p.custom_attributes, node.name)
    compared = _sure(_ordered(number, node.op, node.value))
    # Braze: "exactly 0", "less than" (and "does not equal") include users without a value.
    with_blank = node.op in ("less_than", "less_than_or_equal_to", "not_equal") or (
        node.op == "equals" and node.value == 0
    )
    return or_(compared, number.is_(None)) if with_blank else compared


@_compile.register
def _string(node: t.StringAttr, scope: Scope) -> Condition:
    doc, dialect = p.custom_attributes, scope.dialect
    if node.op == "equals":  # case-sensitive
        if dialect == "sqlite":
            # ->> gives a non-string value as a number (or NULL), never equal to a text, so the
            # type guard is not needed here (measured: 0.59 → 0.43 s on 300,000 profiles).
            return _sure(doc.op("->>")(literal(node.name, String())) == node.value)
        return _sure(d.json_text(dialect, doc, node.name) == node.value)
    if node.op == "not_equal":  # "not case sensitive" (B-CA); users without a value match
        text = d.json_text(dialect, doc, node.name)
        return not_(_sure(func.lower(text) == node.value.lower()))
    matches = _sure(d.json_matches(dialect, doc, node.name, node.value))
    if node.op == "matches_regex":
        return matches
    # "does not match" only matches users that have a value.
    return and_(_has_value(dialect, node.name), not_(matches))


@_compile.register
def _boolean(node: t.BooleanAttr, scope: Scope) -> Condition:
    member = d.json_member(p.custom_attributes, node.name)
    is_bool = _sure(d.json_is(scope.dialect, member, "boolean"))
    value = "true" if node.equals else "false"
    equal = and_(is_bool, _sure(d.json_as_text(scope.dialect, member) == value))
    return not_(equal) if node.negate else equal


@_compile.register
def _array(node: t.ArrayAttr, scope: Scope) -> Condition:
    has = _sure(d.json_array_has(scope.dialect, p.custom_attributes, node.name, node.value))
    return has if node.include else not_(has)


@_compile.register
def _time_attr(node: t.TimeAttr, scope: Scope) -> Condition:
    text = d.json_time(scope.dialect, p.custom_attributes, node.name)
    return _sure(_when(text, node.op, node.value, scope.now, as_text=True))


@_compile.register
def _presence(node: t.AttrPresence, scope: Scope) -> Condition:
    has = _has_value(scope.dialect, node.name)
    return has if node.present else not_(has)


def _has_value(dialect: str, name: str) -> Condition:
    """Not blank: present, not null, not an empty string, not an empty array."""
    member = d.json_member(p.custom_attributes, name)
    # The JSON forms of a blank: null, "" and [] (PostgreSQL shows a string without quotes).
    blanks = ["null", '""' if dialect == "sqlite" else "", "[]"]
    return _sure(and_(member.is_not(None), d.json_as_text(dialect, member).not_in(blanks)))


# Times ---------------------------------------------------------------------------------------


def _when(value: Any, op: t.TimeOp, wanted: t.TimeValue, now: datetime, *, as_text: bool) -> Any:
    """``value`` (a time column, or ISO text when ``as_text``) against the comparison."""

    def at(moment: datetime) -> Any:
        return format_time(moment) if as_text else moment

    if wanted.instant is not None:
        return value > at(wanted.instant) if op == "after" else value < at(wanted.instant)
    span = timedelta(days=wanted.days or 0)
    return {
        "more_than_x_days_ago": value < at(now - span),
        "less_than_x_days_ago": and_(value > at(now - span), value <= at(now)),
        "more_than_x_days_in_the_future": value > at(now + span),
        "less_than_x_days_in_the_future": and_(value > at(now), value < at(now + span)),
    }[op]


def _counted(total: Any, op: t.CountOp, value: float) -> Condition:
    total = func.coalesce(total, 0)
    if op == "more_than":
        return total > value  # type: ignore[no-any-return]
    if op == "less_than":
        return total < value  # type: ignore[no-any-return]
    return total == value  # type: ignore[no-any-return]


def _since(scope: Scope, days: int) -> Any:
    # "Y calendar days" in UTC: today and the Y days before it (Y = 1 looks at 24–48 hours).
    return (scope.now - days * DAY).date()


@_compile.register
def _event_count(node: t.EventCount, scope: Scope) -> Condition:
    if node.days is None:
        s = profile_event_stats.c
        total = select(s.count).where(s.profile_id == p.id, s.name == node.event)
    else:
        e = profile_event_days.c
        total = select(func.sum(e.count)).where(
            e.profile_id == p.id, e.name == node.event, e.day >= _since(scope, node.days)
        )
    return _counted(total.scalar_subquery(), node.op, node.value)


@_compile.register
def _event_time(node: t.EventTime, scope: Scope) -> Condition:
    s = profile_event_stats.c
    column = s.first_at if node.which == "first" else s.last_at
    moment = select(column).where(s.profile_id == p.id, s.name == node.event).scalar_subquery()
    return _sure(_when(moment, node.op, node.value, scope.now, as_text=False))


def _product(columns: Any, product_id: str | None) -> list[Any]:
    where = [columns.profile_id == p.id]
    if product_id is not None:
        where.append(columns.product_id == product_id)
    return where


@_compile.register
def _purchase_count(node: t.PurchaseCount, scope: Scope) -> Condition:
    if node.days is None:
        s = profile_purchase_stats.c
        total = select(func.sum(s.count)).where(*_product(s, node.product_id))
    else:
        e = profile_purchase_days.c
        where = [*_product(e, node.product_id), e.day >= _since(scope, node.days)]
        total = select(func.sum(e.count)).where(*where)
    return _counted(total.scalar_subquery(), node.op, node.value)


@_compile.register
def _money(node: t.MoneySpent, scope: Scope) -> Condition:
    if node.days is None:
        return _counted(p.total_revenue, node.op, node.value)
    e = profile_purchase_days.c
    spent = select(func.sum(e.revenue)).where(
        e.profile_id == p.id, e.day >= _since(scope, node.days)
    )
    return _counted(spent.scalar_subquery(), node.op, node.value)


@_compile.register
def _purchase_time(node: t.PurchaseTime, scope: Scope) -> Condition:
    s = profile_purchase_stats.c
    moment = select(func.min(s.first_at) if node.which == "first" else func.max(s.last_at))
    moment = moment.where(*_product(s, node.product_id))
    return _sure(_when(moment.scalar_subquery(), node.op, node.value, scope.now, as_text=False))


# Standard fields -----------------------------------------------------------------------------


@_compile.register
def _blank(node: t.Blank, scope: Scope) -> Condition:
    if node.field == "external_id":
        return p.external_id.is_(None) if node.blank else p.external_id.is_not(None)
    blank = or_(p.email.is_(None), p.email == "")
    return blank if node.blank else not_(blank)


@_compile.register
def _external_id(node: t.ExternalIdEquals, scope: Scope) -> Condition:
    equal = _sure(p.external_id == node.value)
    return not_(equal) if node.negate else equal


@_compile.register
def _subscription(node: t.Subscription, scope: Scope) -> Condition:
    column = p.email_subscribe if node.channel == "email" else p.push_subscribe
    # A profile that never set its state is "subscribed", Braze's default.
    state = func.coalesce(column, "subscribed")
    return state != node.value if node.negate else state == node.value


@_compile.register
def _last_used_app(node: t.LastUsedApp, scope: Scope) -> Condition:
    last = d.json_text(scope.dialect, p.standard, "date_of_last_session")
    return _sure(_when(last, node.op, node.value, scope.now, as_text=True))


@_compile.register
def _bucket(node: t.RandomBucket, scope: Scope) -> Condition:
    return _ordered(p.random_bucket, node.op, node.value)  # type: ignore[no-any-return]


# Queries -------------------------------------------------------------------------------------


def _in_workspace(scope: Scope) -> Condition:
    # On SQLite, "+column" keeps the planner off the (workspace_id, phone) index: without table
    # statistics it would walk the whole workspace through it instead of letting a cohort's
    # members drive primary-key lookups (measured: a 300,000-member cohort 0.32 → 0.23 s).
    column: Any = (
        literal_column("+profiles.workspace_id") if scope.dialect == "sqlite" else (p.workspace_id)
    )
    return column == scope.workspace_id  # type: ignore[no-any-return]


def _audience(node: t.Node, scope: Scope) -> Condition:
    return and_(_in_workspace(scope), condition(node, scope))


def members_query(node: t.Node, scope: Scope) -> Select[Any]:
    """The ids of the members: set operations on cohort memberships when the definition is
    only about cohorts (measured 10–30× faster than testing every profile), else profiles."""
    cohort_only = cohort_sets(node, scope)
    if cohort_only is not None:
        return cohort_only
    return select(p.id).where(_audience(node, scope))


async def size(conn: AsyncConnection, node: t.Node, scope: Scope) -> int:
    members = members_query(node, scope).subquery()
    query = select(func.count()).select_from(members)
    if scope.dialect == "postgresql":
        # A size over a million profiles costs enough for PostgreSQL to JIT-compile its plan,
        # ~130 ms on this 2-core machine for a plan run once (measured: (b) 1.48 -> 1.31 s).
        # Only JIT: more work_mem as well turned sorts into slower hash aggregates.
        await conn.execute(text("SET LOCAL jit = off"))
    return int((await conn.execute(query)).scalar_one())


async def member_page(
    conn: AsyncConnection, node: t.Node, scope: Scope, after: int, limit: int
) -> Sequence[int]:
    """The next ``limit`` member ids above ``after``, in id order (keyset pages)."""
    members = members_query(node, scope).subquery()
    column = members.c[members.c.keys()[0]]
    query = select(column).where(column > after).order_by(column).limit(limit)
    return list((await conn.execute(query)).scalars())


async def stream_members(
    conn: AsyncConnection, node: t.Node, scope: Scope, chunk: int
) -> AsyncIterator[list[int]]:
    """Every member id in id order, evaluated once and read in chunks (exports)."""
    members = members_query(node, scope).subquery()
    column = members.c[members.c.keys()[0]]
    result = await conn.stream(select(column).order_by(column))
    async for part in result.partitions(chunk):
        yield [int(row[0]) for row in part]


def _cohort_members(node: t.CohortMember, scope: Scope) -> Select[Any]:
    return _members_of(node.partner, [node.cohort_id], scope)


def _members_of(partner: str, cohort_ids: Sequence[str], scope: Scope) -> Select[Any]:
    """Memberships of a partner's cohorts: one scan of the index, a profile once per cohort."""
    m, c = cohort_members.c, cohorts.c
    which = c.cohort_id == cohort_ids[0] if len(cohort_ids) == 1 else c.cohort_id.in_(cohort_ids)
    return (
        select(m.profile_id.label("id"))
        .join(cohorts, c.id == m.cohort)
        .where(c.workspace_id == scope.workspace_id, c.partner == partner, which)
    )


def _plain_includes(node: t.Or) -> str | None:
    """The partner, when an OR holds only inclusions of that one partner's cohorts."""
    partners = {i.partner for i in node.items if isinstance(i, t.CohortMember) and i.include}
    simple = all(isinstance(i, t.CohortMember) and i.include for i in node.items)
    return next(iter(partners)) if simple and len(partners) == 1 else None


def cohort_sets(node: t.Node, scope: Scope, *, distinct: bool = True) -> Select[Any] | None:
    """Cohort algebra as SQL set operations on the memberships (a member always belongs to the
    cohort's workspace): includes → the members, OR → UNION, AND → INTERSECT, and an exclusion
    inside an AND → EXCEPT. None when the definition needs anything else.

    ``distinct=False``: the caller combines the result with a set operation, which removes
    duplicates itself; an OR of one partner's cohorts is then a single scan (``cohort IN …``)
    instead of a UNION that sorts or hashes every membership (measured 0.31 → 0.18 s for
    (c2 OR c3 OR c4) AND NOT c5 on PostgreSQL at 1,000,000 profiles)."""
    if isinstance(node, t.CohortMember) and node.include:
        return _cohort_members(node, scope)
    if isinstance(node, t.Or):
        partner = _plain_includes(node)
        if partner is not None:
            ids = [i.cohort_id for i in node.items if isinstance(i, t.CohortMember)]
            found = _members_of(partner, ids, scope)
            return found.distinct() if distinct and len(ids) > 1 else found
        if len(node.items) == 1:  # no UNION to deduplicate it
            return cohort_sets(node.items[0], scope, distinct=distinct)
        parts = [cohort_sets(item, scope, distinct=False) for item in node.items]
        if any(part is None for part in parts):
            return None
        return _setop(union, parts)
    if isinstance(node, t.And):
        return _and_sets(node, scope, distinct)
    return None


def _and_sets(node: t.And, scope: Scope, distinct: bool) -> Select[Any] | None:
    kept = [i for i in node.items if not (isinstance(i, t.CohortMember) and not i.include)]
    dropped = [i for i in node.items if isinstance(i, t.CohortMember) and not i.include]
    # A set operation follows (INTERSECT of several, EXCEPT of an exclusion): it deduplicates.
    combined = len(kept) > 1 or bool(dropped)
    parts = [cohort_sets(item, scope, distinct=distinct and not combined) for item in kept]
    if not parts or any(part is None for part in parts):
        return None
    base = _setop(intersect, parts)
    for gone in dropped:
        base = _setop(except_, [base, _cohort_members(
            t.CohortMember(gone.partner, gone.cohort_id, True), scope)])  # fmt: skip
    return base


def _setop(combine: Any, parts: Sequence[Any]) -> Select[Any]:
    if len(parts) == 1:
        return parts[0]  # type: ignore[no-any-return]
    subqueries = [select(part.subquery().c[0]) for part in parts]
    combined = combine(*subqueries).subquery()
    return select(combined.c[0].label("id"))
