"""A cohort definition compiled to one SQL condition on ``users`` (spec amplitude §3.1).

Each event condition is a grouped subquery on ``events`` (by project, type and time — the
table's index), so computing a cohort is one ``INSERT … SELECT`` on either dialect, never a
per-user loop. Negated clauses are complements within the project's users.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, false, func, not_, or_, select, union
from sqlalchemy.sql.elements import ColumnElement

from cohortbridge.analytics.cohorts.logic import definition as d
from cohortbridge.analytics.cohorts.models import (
    cohort_changes,
    cohort_computations,
    cohort_members,
    cohorts,
)
from cohortbridge.analytics.identity.models import merges, users
from cohortbridge.analytics.ingest.logic.events import DEVICE_FIELDS
from cohortbridge.analytics.ingest.models import events
from cohortbridge.db import dialect as sql

Condition = ColumnElement[bool]
u, e = users.c, events.c


@dataclass(frozen=True)
class Scope:
    dialect: str
    project_id: int
    now: datetime
    inactive: frozenset[str] = field(default_factory=frozenset)
    # Event conditions as lookups correlated on the user (the (amplitude_id, time) index of
    # events), not as subqueries grouping every event of the window: for a few thousand users
    # (a delta), not for everyone.
    per_user: bool = False


def window_of(column: Any, window: d.Window, scope: Scope) -> list[Any]:
    if window.kind == "rolling":
        end = scope.now - timedelta(days=window.offset)
        return [column >= end - timedelta(days=window.days or 0), column <= end]
    if window.kind == "since":
        return [column >= window.start, column <= scope.now]
    if window.kind == "between":
        return [column >= window.start, column < window.end]
    return [column <= scope.now] if window.kind == "all" else []


def _first_use(window: d.Window, scope: Scope) -> list[Any]:
    """Within N days of the user's first use."""
    limit = sql.plus_days(scope.dialect, u.first_seen_at, window.days or 0)
    return [e.time >= u.first_seen_at, e.time < limit, e.time <= scope.now]


def matches(doc: Any, found: d.PropFilter, dialect: str) -> Condition:
    """A property filter on a JSON document (event or user properties), two-valued."""
    text = sql.json_as_string(dialect, doc, found.prop)
    words = [str(v) for v in found.values]
    if found.op in ("is", "is not"):
        hit: Any = func.coalesce(text.in_(words), false())
    elif found.op in ("contains", "does not contain"):
        lowered = func.lower(text)
        hit = or_(*(func.coalesce(lowered.contains(w.lower(), autoescape=True), false())
                    for w in words))  # fmt: skip
    elif found.op in ("set is", "set is not"):
        hit = or_(*(func.coalesce(sql.json_array_has(dialect, doc, found.prop, v), false())
                    for v in found.values))  # fmt: skip
    else:
        number = sql.json_number(dialect, doc, found.prop)
        bound = float(found.values[0])
        compare = {
            "less": number < bound, "less or equal": number <= bound,
            "greater": number > bound, "greater or equal": number >= bound,
        }[found.op]  # fmt: skip
        return func.coalesce(compare, false())
    negative = found.op in ("is not", "does not contain", "set is not")
    result: Condition = not_(hit) if negative else hit
    return result


def _aggregate(condition: d.EventCondition, dialect: str) -> Any:
    if condition.metric is None:
        return func.count()
    if condition.metric.kind == "sum":
        return func.coalesce(func.sum(sql.json_number(dialect, e.event_properties,
                                                      condition.metric.prop)), 0)  # fmt: skip
    return func.count(func.distinct(sql.json_as_string(dialect, e.event_properties,
                                                       condition.metric.prop)))  # fmt: skip


def _compare(value: Any, operator: str, wanted: float) -> Any:
    return {
        "=": value == wanted, "!=": value != wanted, ">": value > wanted,
        ">=": value >= wanted, "<": value < wanted, "<=": value <= wanted,
    }[operator]  # fmt: skip


def type_filter(event_type: str, scope: Scope) -> list[Any]:
    if event_type == "_all":
        return []
    if event_type == "_active":
        return [e.event_type.not_in(sorted(scope.inactive))] if scope.inactive else []
    return [e.event_type == event_type]


def _performed(condition: d.EventCondition, scope: Scope) -> Condition:
    """The user (of the enclosing query) performed the event as the condition says; as
    ``performers``, at least once."""
    # ``project_id + 0``: with no statistics SQLite prefers the (project_id, event_type, time)
    # index, two equalities, and scans the whole window for every user; the arithmetic keeps
    # it (and PostgreSQL) on (amplitude_id, time). A user's events are all of one project.
    where = [e.amplitude_id == u.amplitude_id, e.project_id + 0 == scope.project_id,
             *type_filter(condition.event_type, scope)]  # fmt: skip
    where += [matches(e.event_properties, f, scope.dialect) for f in condition.filters]
    if condition.window.kind == "first_use":
        where += _first_use(condition.window, scope)
    else:
        where += window_of(e.time, condition.window, scope)
    aggregate = _aggregate(condition, scope.dialect)
    held = _compare(aggregate, condition.operator, condition.value)
    found = select(func.count()).select_from(events).where(*where)  # an aggregate query
    return found.having(and_(func.count() >= 1, held)).exists()


def performers(condition: d.EventCondition, scope: Scope) -> Select[Any]:
    """The users who performed the event as the condition says (at least once, so "count = 0"
    selects nobody, as in Amplitude)."""
    where = [e.project_id == scope.project_id, *type_filter(condition.event_type, scope)]
    where += [matches(e.event_properties, f, scope.dialect) for f in condition.filters]
    query = select(e.amplitude_id)
    if condition.window.kind == "first_use":
        query = query.join(users, u.amplitude_id == e.amplitude_id)
        where += _first_use(condition.window, scope)
    else:
        where += window_of(e.time, condition.window, scope)
    aggregate = _aggregate(condition, scope.dialect)
    return (
        query.where(*where)
        .group_by(e.amplitude_id)
        .having(_compare(aggregate, condition.operator, condition.value))
    )


def _activity(condition: d.ActivityCondition, scope: Scope) -> Condition:
    if condition.kind == "new":
        return and_(u.first_seen_at.is_not(None), *window_of(u.first_seen_at, condition.window,
                                                             scope))  # fmt: skip
    active = d.EventCondition("_active", ">=", 1, None, (), condition.window)
    return _event_condition(active, scope)


def _event_condition(condition: d.EventCondition, scope: Scope) -> Condition:
    if scope.per_user:
        return _performed(condition, scope)
    return u.amplitude_id.in_(performers(condition, scope))


def _property(condition: d.PropertyCondition, scope: Scope) -> Condition:
    name = condition.filter.prop
    custom = name.startswith("gp:")
    key = name.removeprefix("gp:")
    doc = u.device_properties if not custom and key in DEVICE_FIELDS else u.user_properties
    found = d.PropFilter(key, condition.filter.op, condition.filter.values)
    return matches(doc, found, scope.dialect)


def _member_of(condition: d.CohortCondition, scope: Scope) -> Condition:
    members = (
        select(cohort_members.c.amplitude_id)
        .join(cohorts, cohorts.c.pk == cohort_members.c.cohort)
        .where(cohorts.c.id == condition.cohort_id, cohorts.c.project_id == scope.project_id)
    )
    return u.amplitude_id.in_(members)


def _condition(condition: d.Condition, scope: Scope) -> Condition:
    if isinstance(condition, d.EventCondition):
        return _event_condition(condition, scope)
    if isinstance(condition, d.ActivityCondition):
        return _activity(condition, scope)
    if isinstance(condition, d.PropertyCondition):
        return _property(condition, scope)
    return _member_of(condition, scope)


def condition(definition: d.Definition, scope: Scope) -> Condition:
    clauses: list[Any] = []
    for clause in definition.clauses:
        any_of = or_(*(_condition(c, scope) for c in clause.conditions))
        clauses.append(not_(any_of) if clause.negated else any_of)
    return and_(u.project_id == scope.project_id, *clauses)


def members_query(definition: d.Definition, scope: Scope) -> Select[Any]:
    return select(u.amplitude_id).where(condition(definition, scope))


# --- deltas: who may have changed since the last computation ----------------------------------

# Transactions that started before the last computation but committed after it are not in what
# it read: reaching this far back re-reads them (re-evaluating a user is harmless).
MARGIN = timedelta(minutes=5)


def _slices(window: d.Window, scope: Scope, since: datetime) -> list[tuple[datetime, datetime]]:
    """The spans of time a window's moving bounds swept since ``since``: what entered or
    left the window is in them."""
    if window.kind == "rolling":
        days, offset = timedelta(days=window.days or 0), timedelta(days=window.offset)
        return [
            (since - offset - days - MARGIN, scope.now - offset - days),
            (since - offset - MARGIN, scope.now - offset),
        ]
    if window.kind in ("since", "all", "first_use"):
        return [(since - MARGIN, scope.now)]  # their upper bound is "now"
    return []  # between: fixed


def _event_slices(condition: d.EventCondition, scope: Scope, since: datetime) -> list[Any]:
    return [
        select(e.amplitude_id).where(
            e.project_id == scope.project_id,
            *type_filter(condition.event_type, scope),
            e.time >= low,
            e.time <= high,
        )
        for low, high in _slices(condition.window, scope, since)
    ]


def _moved(condition: d.Condition, scope: Scope, since: datetime) -> list[Any]:
    if isinstance(condition, d.EventCondition):
        return _event_slices(condition, scope, since)
    if isinstance(condition, d.ActivityCondition):
        if condition.kind == "active":
            active = d.EventCondition("_active", ">=", 1, None, (), condition.window)
            return _event_slices(active, scope, since)
        return [
            select(u.amplitude_id).where(
                u.project_id == scope.project_id, u.first_seen_at >= low, u.first_seen_at <= high
            )
            for low, high in _slices(condition.window, scope, since)
        ]
    if isinstance(condition, d.CohortCondition):
        k, done = cohort_changes.c, cohort_computations.c
        return [
            select(k.amplitude_id)
            .select_from(cohort_changes.join(cohort_computations, and_(
                done.cohort == k.cohort, done.version == k.version)).join(
                cohorts, cohorts.c.pk == k.cohort))
            .where(cohorts.c.id == condition.cohort_id, cohorts.c.project_id == scope.project_id,
                   done.computed_at >= since - MARGIN)
        ]  # fmt: skip
    return []  # user properties: the user's updated_at says when they changed


def changed_users(definition: d.Definition, scope: Scope, since: datetime) -> Any:
    """Every user whose membership may differ from the computation at ``since``: users written
    since (events, identifies, properties, first seen), users merged away, users with events in
    the spans the definition's windows swept, and users who entered or left a cohort it names.
    Anyone else is a member now exactly when they were then."""
    queries: list[Any] = [
        select(u.amplitude_id).where(u.project_id == scope.project_id,
                                     u.updated_at >= since - MARGIN),
        select(merges.c.merged_id).where(merges.c.project_id == scope.project_id,
                                         merges.c.merged_at >= since - MARGIN),
    ]  # fmt: skip
    for clause in definition.clauses:
        for condition in clause.conditions:
            queries += _moved(condition, scope, since)
    return union(*queries)
