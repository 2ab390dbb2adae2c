"""Braze's JSON filter vocabulary (spec braze §5.2) → the typed tree of ``tree.py``.

Every error names the offending path (``filter.AND[1].custom_attribute.comparison``) and why,
so a client can fix its definition without guessing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

from cohortbridge.engage.segments.logic import tree as t
from cohortbridge.engage.users.logic.times import parse_time

MAX_DEPTH = 16
MAX_NODES = 500
MAX_REGEX = 32_764  # Braze's limit on a regex filter value
MAX_NAME = 255
MAX_DAYS = 30  # "X custom event in Y days": Y in 1–30
MAX_IN_DAYS_COUNT = 50  # … and X in 0–50
BUCKETS = 10_000
PARTNER_COHORTS = re.compile(r"^([a-z0-9][a-z0-9_-]{0,62})_cohorts$")

STRING_OPS = ("equals", "not_equal", "matches_regex", "does_not_match_regex")
NUMBER_OPS = ("equals", "not_equal", "greater_than", "greater_than_or_equal_to", "less_than",
              "less_than_or_equal_to")  # fmt: skip
COUNT_OPS = ("more_than", "less_than", "exactly")
# Both spellings of the relative comparisons: the Connected Audience one (greater_than_…) and
# the dashboard's (more_than_…).
TIME_OPS: dict[str, t.TimeOp] = {
    "after": "after",
    "before": "before",
    "more_than_x_days_ago": "more_than_x_days_ago",
    "greater_than_x_days_ago": "more_than_x_days_ago",
    "less_than_x_days_ago": "less_than_x_days_ago",
    "more_than_x_days_in_the_future": "more_than_x_days_in_the_future",
    "greater_than_x_days_in_the_future": "more_than_x_days_in_the_future",
    "less_than_x_days_in_the_future": "less_than_x_days_in_the_future",
}
ATTRIBUTE_OPS = (
    *dict.fromkeys((*STRING_OPS, *NUMBER_OPS, "does_not_equal", "includes_value",
                    "does_not_include_value", *TIME_OPS, "exists", "does_not_exist")),
)  # fmt: skip
SUBSCRIPTION_VALUES = ("opted_in", "subscribed", "unsubscribed")


class InvalidFilter(Exception):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class _Parser:
    def __init__(self) -> None:
        self.nodes = 0

    def node(self, raw: Any, path: str, depth: int) -> t.Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise InvalidFilter(path, f"a definition holds at most {MAX_NODES} filters")
        if depth > MAX_DEPTH:
            raise InvalidFilter(path, f"groups nest at most {MAX_DEPTH} deep")
        if not isinstance(raw, dict) or len(raw) != 1:
            raise InvalidFilter(path, "must be an object with exactly one key, the filter's name")
        ((key, body),) = raw.items()
        if key in ("AND", "OR"):
            return self.group(key, body, f"{path}.{key}", depth)
        if key == "NOT":
            return t.Not(self.node(body, f"{path}.NOT", depth + 1))
        return leaf(key, body, f"{path}.{key}")

    def group(self, key: str, body: Any, path: str, depth: int) -> t.Node:
        if not isinstance(body, list) or not body:
            raise InvalidFilter(path, "must be a non-empty array of filters")
        items = tuple(self.node(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(body))
        return t.And(items) if key == "AND" else t.Or(items)


def parse(raw: Any, path: str = "filter") -> t.Node:
    """The tree of a definition; ``InvalidFilter`` for the first thing wrong with it."""
    return _Parser().node(raw, path, 1)


class _Fields:
    """The fields of one filter object, each read once; anything left over is an error."""

    def __init__(self, body: Any, path: str, allowed: tuple[str, ...]) -> None:
        if not isinstance(body, dict):
            raise InvalidFilter(path, "must be an object")
        unknown = sorted(set(body) - set(allowed))
        if unknown:
            reason = f"unknown field (expected {_one_of(allowed)})"
            raise InvalidFilter(f"{path}.{unknown[0]}", reason)
        self.body = body
        self.path = path

    def at(self, name: str) -> str:
        return f"{self.path}.{name}"

    def has(self, name: str) -> bool:
        return name in self.body

    def text(self, name: str, *, limit: int = MAX_NAME) -> str:
        value = self.body.get(name)
        if not isinstance(value, str) or not value:
            raise InvalidFilter(self.at(name), "must be a non-empty string")
        if len(value) > limit:
            raise InvalidFilter(self.at(name), f"must be at most {limit} characters")
        return value

    def choice(self, name: str, options: tuple[str, ...]) -> str:
        value = self.body.get(name)
        if value not in options:
            shown = repr(value) if isinstance(value, str) else "missing or not a string"
            raise InvalidFilter(self.at(name), f"{shown} is not one of {_one_of(options)}")
        return cast(str, value)

    def number(self, name: str, *, low: float | None = None, high: float | None = None) -> float:
        value = self.body.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidFilter(self.at(name), "must be a number")
        if (low is not None and value < low) or (high is not None and value > high):
            raise InvalidFilter(self.at(name), f"must be between {low:g} and {high:g}")
        return float(value)

    def integer(self, name: str, low: int, high: int) -> int:
        value = self.body.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidFilter(self.at(name), "must be an integer")
        if not low <= value <= high:
            raise InvalidFilter(self.at(name), f"must be between {low} and {high}")
        return value

    def optional_text(self, name: str) -> str | None:
        return self.text(name) if self.body.get(name) is not None else None


def _one_of(options: tuple[str, ...] | list[str]) -> str:
    return ", ".join(options)


def _time_value(fields: _Fields, op: t.TimeOp) -> t.TimeValue:
    if op in ("after", "before"):
        instant = parse_time(fields.body.get("value"))
        if instant is None:
            raise InvalidFilter(fields.at("value"), "must be an ISO-8601 date or time")
        return t.TimeValue(instant=instant)
    return t.TimeValue(days=fields.number("value", low=0, high=36_500))


def _time_op(fields: _Fields) -> t.TimeOp:
    return TIME_OPS[fields.choice("comparison", tuple(TIME_OPS))]


def _custom_attribute(body: Any, path: str) -> t.Node:
    fields = _Fields(body, path, ("custom_attribute_name", "comparison", "value"))
    name = fields.text("custom_attribute_name")
    if name.startswith("$"):
        raise InvalidFilter(fields.at("custom_attribute_name"), "must not start with '$'")
    op = fields.choice("comparison", ATTRIBUTE_OPS)
    if op in ("exists", "does_not_exist"):
        return t.AttrPresence(name, present=op == "exists")
    if op in TIME_OPS:
        return t.TimeAttr(name, TIME_OPS[op], _time_value(fields, TIME_OPS[op]))
    value = fields.body.get("value")
    if op in ("includes_value", "does_not_include_value"):
        if not isinstance(value, str | int | float) or value == "":
            raise InvalidFilter(fields.at("value"), "must be a string, number or boolean")
        return t.ArrayAttr(name, value, include=op == "includes_value")
    if op in ("matches_regex", "does_not_match_regex"):
        return t.StringAttr(name, op, _regex(fields))  # type: ignore[arg-type]
    return _typed_comparison(fields, name, op, value)


def _typed_comparison(fields: _Fields, name: str, op: str, value: Any) -> t.Node:
    """equals / not_equal / ordering: the value's JSON type says the attribute's type."""
    negate = op in ("not_equal", "does_not_equal")
    if isinstance(value, bool):
        if op not in ("equals", "not_equal", "does_not_equal"):
            raise InvalidFilter(fields.at("value"), f"'{op}' needs a number, not a boolean")
        return t.BooleanAttr(name, equals=value, negate=negate)
    if isinstance(value, int | float):
        number_op = "not_equal" if negate else op
        return t.NumberAttr(name, number_op, float(value))  # type: ignore[arg-type]
    if isinstance(value, str) and op in ("equals", "not_equal", "does_not_equal"):
        if len(value) > MAX_NAME:
            raise InvalidFilter(fields.at("value"), f"must be at most {MAX_NAME} characters")
        return t.StringAttr(name, "not_equal" if negate else "equals", value)
    raise InvalidFilter(fields.at("value"), f"'{op}' needs a number")


def _regex(fields: _Fields) -> str:
    pattern = fields.text("value", limit=MAX_REGEX)
    try:
        re.compile(pattern)
    except re.error as error:
        reason = f"is not a valid regular expression ({error})"
        raise InvalidFilter(fields.at("value"), reason) from None
    return pattern


def _count(fields: _Fields) -> tuple[t.CountOp, int, int | None]:
    op = cast(t.CountOp, fields.choice("comparison", COUNT_OPS))
    if not fields.has("days"):
        return op, fields.integer("value", 0, 2**62), None
    days = fields.integer("days", 1, MAX_DAYS)
    return op, fields.integer("value", 0, MAX_IN_DAYS_COUNT), days


def _custom_event(body: Any, path: str) -> t.Node:
    fields = _Fields(body, path, ("event_name", "comparison", "value", "days"))
    event = fields.text("event_name")
    op, value, days = _count(fields)
    return t.EventCount(event, op, value, days)


def _event_time(which: str) -> Callable[[Any, str], t.Node]:
    def build(body: Any, path: str) -> t.Node:
        fields = _Fields(body, path, ("event_name", "comparison", "value"))
        event = fields.text("event_name")
        op = _time_op(fields)
        return t.EventTime(event, which, op, _time_value(fields, op))  # type: ignore[arg-type]

    return build


def _purchase(body: Any, path: str) -> t.Node:
    fields = _Fields(body, path, ("product_id", "comparison", "value", "days"))
    product = fields.optional_text("product_id")
    op, value, days = _count(fields)
    return t.PurchaseCount(product, op, value, days)


def _money_spent(body: Any, path: str) -> t.Node:
    fields = _Fields(body, path, ("comparison", "value", "days"))
    op = cast(t.CountOp, fields.choice("comparison", COUNT_OPS))
    days = fields.integer("days", 1, MAX_DAYS) if fields.has("days") else None
    return t.MoneySpent(op, fields.number("value", low=0, high=1e15), days)


def _purchase_time(which: str) -> Callable[[Any, str], t.Node]:
    def build(body: Any, path: str) -> t.Node:
        fields = _Fields(body, path, ("product_id", "comparison", "value"))
        product = fields.optional_text("product_id")
        op = _time_op(fields)
        return t.PurchaseTime(product, which, op, _time_value(fields, op))  # type: ignore[arg-type]

    return build


def _external_id(body: Any, path: str) -> t.Node:
    fields = _Fields(body, path, ("comparison", "value"))
    op = fields.choice("comparison", ("blank", "not_blank", "equals", "not_equal"))
    if op in ("blank", "not_blank"):
        return t.Blank("external_id", blank=op == "blank")
    return t.ExternalIdEquals(fields.text("value", limit=987), negate=op == "not_equal")


def _email_address(body: Any, path: str) -> t.Node:
    fields = _Fields(body, path, ("comparison",))
    return t.Blank("email", blank=fields.choice("comparison", ("blank", "not_blank")) == "blank")


def _subscription(channel: str) -> Callable[[Any, str], t.Node]:
    def build(body: Any, path: str) -> t.Node:
        fields = _Fields(body, path, ("comparison", "value"))
        negate = fields.choice("comparison", ("is", "is_not")) == "is_not"
        value = fields.choice("value", SUBSCRIPTION_VALUES)
        return t.Subscription(channel, value, negate)  # type: ignore[arg-type]

    return build


def _last_used_app(body: Any, path: str) -> t.Node:
    fields = _Fields(body, path, ("comparison", "value"))
    op = _time_op(fields)
    return t.LastUsedApp(op, _time_value(fields, op))


def _random_bucket(body: Any, path: str) -> t.Node:
    fields = _Fields(body, path, ("comparison", "value"))
    op = cast(t.NumberOp, fields.choice("comparison", NUMBER_OPS))
    return t.RandomBucket(op, fields.integer("value", 0, BUCKETS - 1))


def _membership(fields: _Fields) -> tuple[str, bool]:
    include = fields.choice("comparison", ("includes_value", "excludes_value")) == "includes_value"
    return fields.text("value"), include


def _segment_membership(body: Any, path: str) -> t.Node:
    segment_id, include = _membership(_Fields(body, path, ("comparison", "value")))
    return t.SegmentMember(segment_id, include)


def _partner_cohorts(body: Any, path: str) -> t.Node:
    fields = _Fields(body, path, ("partner", "comparison", "value"))
    partner = fields.text("partner", limit=64)
    cohort_id, include = _membership(fields)
    return t.CohortMember(partner, cohort_id, include)


def _cohorts_of(partner: str) -> Callable[[Any, str], t.Node]:
    def build(body: Any, path: str) -> t.Node:
        cohort_id, include = _membership(_Fields(body, path, ("comparison", "value")))
        return t.CohortMember(partner, cohort_id, include)

    return build


LEAVES: dict[str, Callable[[Any, str], t.Node]] = {
    "custom_attribute": _custom_attribute,
    "custom_event": _custom_event,
    "custom_event_first_occurred": _event_time("first"),
    "custom_event_last_occurred": _event_time("last"),
    "purchase": _purchase,
    "money_spent": _money_spent,
    "first_purchase": _purchase_time("first"),
    "last_purchase": _purchase_time("last"),
    "external_id": _external_id,
    "email_address": _email_address,
    "email_subscription_status": _subscription("email"),
    "push_subscription_status": _subscription("push"),
    "last_used_app": _last_used_app,
    "random_bucket": _random_bucket,
    "segment_membership": _segment_membership,
    "partner_cohorts": _partner_cohorts,
}


def leaf(key: str, body: Any, path: str) -> t.Node:
    build = LEAVES.get(key)
    if build is not None:
        return build(body, path)
    partner = PARTNER_COHORTS.match(key)
    if partner:
        # amplitude_cohorts, and the same filter for any registered partner.
        return _cohorts_of(partner.group(1))(body, path)
    known = _one_of(["AND", "OR", "NOT", *LEAVES, "<partner>_cohorts"])
    raise InvalidFilter(path, f"unknown filter '{key[:64]}' (known: {known})")


def leaves(raw: Any, path: str = "filter") -> list[tuple[str, str, Any]]:
    """(path, key, body) of every filter of a definition that ``parse`` accepted, so that a
    rule checked later (an unknown segment, say) can name where it failed."""
    ((key, body),) = raw.items()
    if key in ("AND", "OR"):
        return [leaf for i, item in enumerate(body) for leaf in leaves(item, f"{path}.{key}[{i}]")]
    if key == "NOT":
        return leaves(body, f"{path}.NOT")
    return [(f"{path}.{key}", key, body)]
