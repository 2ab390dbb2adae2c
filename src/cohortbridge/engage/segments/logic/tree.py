"""A segment definition as a typed tree (spec braze §5.2–§5.4).

The JSON a client sends is parsed into these nodes once (``parse.py``); the SQL compiler and the
human-readable description both walk the tree, never the raw JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Scalar = str | int | float | bool
NumberOp = Literal["equals", "not_equal", "greater_than", "greater_than_or_equal_to",
                   "less_than", "less_than_or_equal_to"]  # fmt: skip
CountOp = Literal["more_than", "less_than", "exactly"]
# Relative times count 24-hour days from the evaluation instant; ``after``/``before`` compare
# with an absolute instant.
TimeOp = Literal["after", "before", "more_than_x_days_ago", "less_than_x_days_ago",
                 "more_than_x_days_in_the_future", "less_than_x_days_in_the_future"]  # fmt: skip


@dataclass(frozen=True)
class TimeValue:
    """The right side of a time comparison: an instant, or a number of days."""

    instant: datetime | None = None
    days: float | None = None


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class CohortMember:
    """``amplitude_cohorts`` (and any partner's): membership of an imported cohort."""

    partner: str
    cohort_id: str
    include: bool


@dataclass(frozen=True)
class SegmentMember:
    segment_id: str
    include: bool


@dataclass(frozen=True)
class StringAttr:
    name: str
    op: Literal["equals", "not_equal", "matches_regex", "does_not_match_regex"]
    value: str


@dataclass(frozen=True)
class NumberAttr:
    name: str
    op: NumberOp
    value: float


@dataclass(frozen=True)
class BooleanAttr:
    name: str
    equals: bool
    negate: bool


@dataclass(frozen=True)
class ArrayAttr:
    name: str
    value: Scalar
    include: bool


@dataclass(frozen=True)
class TimeAttr:
    name: str
    op: TimeOp
    value: TimeValue


@dataclass(frozen=True)
class AttrPresence:
    """``exists`` / ``does_not_exist``: a value that is not blank (not null, not "", not [])."""

    name: str
    present: bool


@dataclass(frozen=True)
class EventCount:
    """All-time count, or with ``days`` the "X custom event in Y days" filter."""

    event: str
    op: CountOp
    value: int
    days: int | None


@dataclass(frozen=True)
class EventTime:
    event: str
    which: Literal["first", "last"]
    op: TimeOp
    value: TimeValue


@dataclass(frozen=True)
class PurchaseCount:
    product_id: str | None
    op: CountOp
    value: int
    days: int | None


@dataclass(frozen=True)
class MoneySpent:
    op: CountOp
    value: float
    days: int | None


@dataclass(frozen=True)
class PurchaseTime:
    product_id: str | None
    which: Literal["first", "last"]
    op: TimeOp
    value: TimeValue


@dataclass(frozen=True)
class Blank:
    """``external_id`` / ``email_address`` blank or not blank (blank external id = anonymous)."""

    field: Literal["external_id", "email"]
    blank: bool


@dataclass(frozen=True)
class ExternalIdEquals:
    value: str
    negate: bool


@dataclass(frozen=True)
class Subscription:
    channel: Literal["email", "push"]
    value: Literal["opted_in", "subscribed", "unsubscribed"]
    negate: bool


@dataclass(frozen=True)
class LastUsedApp:
    op: TimeOp
    value: TimeValue


@dataclass(frozen=True)
class RandomBucket:
    op: NumberOp
    value: int


Node = (
    And | Or | Not | CohortMember | SegmentMember | StringAttr | NumberAttr | BooleanAttr
    | ArrayAttr | TimeAttr | AttrPresence | EventCount | EventTime | PurchaseCount | MoneySpent
    | PurchaseTime | Blank | ExternalIdEquals | Subscription | LastUsedApp | RandomBucket
)  # fmt: skip


def walk(node: Node) -> list[Node]:
    """Every node of the tree, depth first."""
    if isinstance(node, And | Or):
        return [node, *(n for item in node.items for n in walk(item))]
    if isinstance(node, Not):
        return [node, *walk(node.item)]
    return [node]


def segments_named(node: Node) -> set[str]:
    return {n.segment_id for n in walk(node) if isinstance(n, SegmentMember)}


def cohorts_named(node: Node) -> set[tuple[str, str]]:
    return {(n.partner, n.cohort_id) for n in walk(node) if isinstance(n, CohortMember)}
