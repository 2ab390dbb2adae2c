"""Cohort definitions in Amplitude's AND-of-ORs shape (spec amplitude §3.1): JSON → typed tree.

``{"andClauses": [{"negated": false, "orClauses": [<condition>, …]}, …]}``; a user is a member
when every clause holds (a negated clause: when none of its conditions does). Conditions:
``event`` (performed an event — ``_active``/``_all`` or a named type — with a count, a sum or a
count of distinct values of a property, where-filters on its properties, in a window),
``active`` / ``new`` (had been active / new in a window), ``user_property`` and ``cohort``.
Every error names the offending path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from cohortbridge.analytics.ingest.logic.events import MAX_STRING

Scalar = str | int | float | bool
OPERATORS = ("=", "!=", ">", ">=", "<", "<=")
FILTER_OPS = ("is", "is not", "contains", "does not contain", "less", "less or equal",
              "greater", "greater or equal", "set is", "set is not")  # fmt: skip
TIME_TYPES = ("rolling", "since", "between", "first_use", "all")
IGNORED = ("version", "countGroup", "cohortType", "referenceFrameTimeParams")
MAX_CLAUSES = 50
MAX_VALUES = 1000


class InvalidDefinition(Exception):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class Window:
    kind: Literal["rolling", "since", "between", "first_use", "all"]
    days: float | None = None
    offset: float = 0
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class PropFilter:
    prop: str
    op: str
    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class Metric:
    kind: Literal["sum", "distinct"]
    prop: str


@dataclass(frozen=True)
class EventCondition:
    event_type: str  # a name, or _active / _all
    operator: str
    value: float
    metric: Metric | None
    filters: tuple[PropFilter, ...]
    window: Window


@dataclass(frozen=True)
class ActivityCondition:
    kind: Literal["active", "new"]
    window: Window


@dataclass(frozen=True)
class PropertyCondition:
    filter: PropFilter


@dataclass(frozen=True)
class CohortCondition:
    cohort_id: str


Condition = EventCondition | ActivityCondition | PropertyCondition | CohortCondition


@dataclass(frozen=True)
class Clause:
    negated: bool
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Definition:
    clauses: tuple[Clause, ...]

    def cohorts_named(self) -> set[str]:
        return {c.cohort_id for clause in self.clauses for c in clause.conditions
                if isinstance(c, CohortCondition)}  # fmt: skip


def fields_of(raw: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidDefinition(path, "must be an object")
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise InvalidDefinition(f"{path}.{unknown[0]}", f"unknown field (expected one of "
                                                        f"{', '.join(allowed)})")  # fmt: skip
    return raw


def text_field(raw: dict[str, Any], key: str, path: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value or len(value) > MAX_STRING:
        raise InvalidDefinition(f"{path}.{key}", "must be a non-empty string")
    return value


def number_field(raw: dict[str, Any], key: str, path: str, *, minimum: float = 0) -> float:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise InvalidDefinition(f"{path}.{key}", f"must be a number ≥ {minimum:g}")
    return float(value)


def choice(raw: dict[str, Any], key: str, path: str, options: tuple[str, ...]) -> str:
    value = raw.get(key)
    if value not in options:
        raise InvalidDefinition(f"{path}.{key}", f"{value!r} is not one of {', '.join(options)}")
    return str(value)


def instant(raw: dict[str, Any], key: str, path: str) -> datetime:
    value = raw.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC)  # epoch seconds, as Amplitude's APIs
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidDefinition(f"{path}.{key}", "must be an ISO-8601 date or time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def window(raw: dict[str, Any], path: str) -> Window:
    kind = raw.get("time_type", "all")
    if kind not in TIME_TYPES:
        raise InvalidDefinition(f"{path}.time_type", f"{kind!r} is not one of "
                                                     f"{', '.join(TIME_TYPES)}")  # fmt: skip
    if kind in ("rolling", "first_use"):
        offset = number_field(raw, "offset", path) if raw.get("offset") is not None else 0
        return Window(
            kind, days=number_field(raw, "time_value", path, minimum=0.0001), offset=offset
        )
    if kind == "since":
        return Window("since", start=instant(raw, "start", path))
    if kind == "between":
        start, end = instant(raw, "start", path), instant(raw, "end", path)
        if end <= start:
            raise InvalidDefinition(f"{path}.end", "must be after start")
        return Window("between", start=start, end=end)
    return Window("all")


def prop_filter(raw: Any, path: str) -> PropFilter:
    body = fields_of(raw, path, ("prop", "op", "values", "group_type", "subprop_type",
                               "subprop_key", "subprop_op", "subprop_value"))  # fmt: skip
    prop = text_field(body, "prop", path)
    op = choice(body, "op", path, FILTER_OPS)
    values = body.get("values")
    if (
        not isinstance(values, list)
        or not values
        or len(values) > MAX_VALUES
        or not all(isinstance(v, str | int | float) for v in values)
    ):
        raise InvalidDefinition(f"{path}.values", f"must be 1 to {MAX_VALUES} strings or numbers")
    if op in ("less", "less or equal", "greater", "greater or equal") and not all(
        _numeric(v) for v in values
    ):
        raise InvalidDefinition(f"{path}.values", f"'{op}' compares numbers")
    return PropFilter(prop, op, tuple(values))


def _numeric(value: Any) -> bool:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return True
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


EVENT_FIELDS = (
    "type", "type_value", "operator", "operator_value", "metric", "filters", "time_type",
    "time_value", "offset", "interval", "start", "end", "group_by",
)  # fmt: skip


def _event(raw: dict[str, Any], path: str) -> EventCondition:
    body = fields_of(raw, path, EVENT_FIELDS)
    metric_raw = body.get("metric")
    metric = None
    if metric_raw is not None:
        metric_body = fields_of(metric_raw, f"{path}.metric", ("type", "prop"))
        kind = choice(metric_body, "type", f"{path}.metric", ("sum", "distinct"))
        metric = Metric(kind, text_field(metric_body, "prop", f"{path}.metric"))  # type: ignore[arg-type]
    filters = body.get("filters") or []
    if not isinstance(filters, list):
        raise InvalidDefinition(f"{path}.filters", "must be an array of property filters")
    return EventCondition(
        event_type=text_field(body, "type_value", path),
        operator=choice(body, "operator", path, OPERATORS) if "operator" in body else ">=",
        value=number_field(body, "operator_value", path) if "operator_value" in body else 1,
        metric=metric,
        filters=tuple(prop_filter(f, f"{path}.filters[{i}]") for i, f in enumerate(filters)),
        window=window(body, path),
    )


def _condition(raw: Any, path: str) -> Condition:
    if not isinstance(raw, dict):
        raise InvalidDefinition(path, "must be an object")
    kind = raw.get("type")
    if kind == "event":
        return _event(raw, path)
    if kind in ("active", "new"):
        body = fields_of(raw, path, ("type", "time_type", "time_value", "offset", "start", "end"))
        return ActivityCondition(kind, window(body, path))
    if kind == "user_property":
        body = fields_of(raw, path, ("type", "prop", "op", "values"))
        return PropertyCondition(prop_filter({k: v for k, v in body.items() if k != "type"}, path))
    if kind == "cohort":
        body = fields_of(raw, path, ("type", "cohort_id"))
        return CohortCondition(text_field(body, "cohort_id", path))
    raise InvalidDefinition(f"{path}.type", f"{kind!r} is not one of event, active, new, "
                                            "user_property, cohort")  # fmt: skip


def _clause(raw: Any, path: str) -> Clause:
    body = fields_of(raw, path, ("negated", "orClauses"))
    negated = body.get("negated", False)
    if not isinstance(negated, bool):
        raise InvalidDefinition(f"{path}.negated", "must be true or false")
    items = body.get("orClauses")
    if not isinstance(items, list) or not items or len(items) > MAX_CLAUSES:
        raise InvalidDefinition(f"{path}.orClauses", f"must be 1 to {MAX_CLAUSES} conditions")
    conditions = tuple(_condition(c, f"{path}.orClauses[{i}]") for i, c in enumerate(items))
    return Clause(negated, conditions)


def parse(raw: Any, path: str = "definition") -> Definition:
    body = fields_of(raw, path, ("andClauses", *IGNORED))
    clauses = body.get("andClauses")
    if not isinstance(clauses, list) or not clauses or len(clauses) > MAX_CLAUSES:
        raise InvalidDefinition(f"{path}.andClauses", f"must be 1 to {MAX_CLAUSES} clauses")
    return Definition(tuple(_clause(c, f"{path}.andClauses[{i}]") for i, c in enumerate(clauses)))


def has_cycle(start: str, references: dict[str, set[str]]) -> bool:
    """Whether following "part of cohort" references from ``start`` comes back to it."""
    seen: set[str] = set()
    stack = list(references.get(start, ()))
    while stack:
        current = stack.pop()
        if current == start:
            return True
        if current not in seen:
            seen.add(current)
            stack.extend(references.get(current, ()))
    return False
