"""A definition in words, as Braze's ``/segments/details`` ``description`` gives it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import singledispatch

from cohortbridge.engage.segments.logic import tree as t
from cohortbridge.engage.users.logic.times import format_time

NUMBER_WORDS = {
    "equals": "exactly", "not_equal": "does not equal", "greater_than": "more than",
    "greater_than_or_equal_to": "at least", "less_than": "less than",
    "less_than_or_equal_to": "at most",
}  # fmt: skip
COUNT_WORDS = {"more_than": "more than", "less_than": "less than", "exactly": "exactly"}
STRING_WORDS = {
    "equals": "equals", "not_equal": "does not equal", "matches_regex": "matches regex",
    "does_not_match_regex": "does not match regex",
}  # fmt: skip


class Names:
    """How the description names what a definition refers to: cohorts by their display title
    (spec braze §1.8), segments by name; unknown ones by their id."""

    def __init__(
        self,
        cohort_titles: Mapping[tuple[str, str], str] | None = None,
        segment_names: Mapping[str, str] | None = None,
        partner_names: Mapping[str, str] | None = None,
    ) -> None:
        self.cohort_titles = cohort_titles or {}
        self.segment_names = segment_names or {}
        self.partner_names = partner_names or {}

    def partner(self, slug: str) -> str:
        return self.partner_names.get(slug, slug.replace("_", " ").title())

    def cohort(self, partner: str, cohort_id: str) -> str:
        return self.cohort_titles.get(
            (partner, cohort_id), f"[{self.partner(partner)}] {cohort_id}"
        )


def describe(node: t.Node, names: Names | None = None) -> str:
    return _words(node, names or Names(), top=True)


def _words(node: t.Node, names: Names, top: bool = False) -> str:
    if isinstance(node, t.And | t.Or):
        joined = f" {type(node).__name__.upper()} ".join(_words(i, names) for i in node.items)
        return joined if top or len(node.items) == 1 else f"({joined})"
    if isinstance(node, t.Not):
        return f"NOT {_words(node.item, names)}"
    if isinstance(node, t.CohortMember):
        verb = "includes" if node.include else "excludes"
        title = names.cohort(node.partner, node.cohort_id)
        return f'{names.partner(node.partner)} Cohorts {verb} "{title}"'
    if isinstance(node, t.SegmentMember):
        verb = "is in" if node.include else "is not in"
        return f'{verb} segment "{names.segment_names.get(node.segment_id, node.segment_id)}"'
    return _leaf(node)


def _when(op: t.TimeOp, value: t.TimeValue) -> str:
    if value.instant is not None:
        return f"{op} {format_time(value.instant)}"
    days = f"{value.days:g} day{'s' if value.days != 1 else ''}"
    return {
        "more_than_x_days_ago": f"more than {days} ago",
        "less_than_x_days_ago": f"less than {days} ago",
        "more_than_x_days_in_the_future": f"in more than {days}",
        "less_than_x_days_in_the_future": f"in less than {days}",
    }[op]


def _times(op: t.CountOp, value: int, days: int | None) -> str:
    span = f" in the last {days} day{'s' if days != 1 else ''}" if days else ""
    return f"{COUNT_WORDS[op]} {value} time{'s' if value != 1 else ''}{span}"


def _product(product_id: str | None) -> str:
    return f' of "{product_id}"' if product_id else ""


@singledispatch
def _leaf(node: object) -> str:
    raise TypeError(f"no description for {type(node).__name__}")


def _register(kind: type, render: Callable[..., str]) -> None:
    _leaf.register(kind)(render)


_register(t.StringAttr, lambda n: f'{n.name} {STRING_WORDS[n.op]} "{n.value}"')
_register(t.NumberAttr, lambda n: f"{n.name} {NUMBER_WORDS[n.op]} {n.value:g}")
_register(
    t.BooleanAttr, lambda n: f"{n.name} is {'not ' if n.negate else ''}{str(n.equals).lower()}"
)
_register(
    t.ArrayAttr,
    lambda n: f'{n.name} {"includes" if n.include else "does not include"} value "{n.value}"',
)
_register(t.TimeAttr, lambda n: f"{n.name} {_when(n.op, n.value)}")
_register(t.AttrPresence, lambda n: f"{n.name} {'is not blank' if n.present else 'is blank'}")
_register(t.EventCount, lambda n: f'did custom event "{n.event}" {_times(n.op, n.value, n.days)}')
_register(t.EventTime, lambda n: f'{n.which} did custom event "{n.event}" {_when(n.op, n.value)}')
_register(
    t.PurchaseCount,
    lambda n: f"made purchases{_product(n.product_id)} {_times(n.op, n.value, n.days)}",
)
_register(
    t.MoneySpent,
    lambda n: (
        f"money spent {COUNT_WORDS[n.op]} {n.value:g}"
        + (f" in the last {n.days} day{'s' if n.days != 1 else ''}" if n.days else "")
    ),
)
_register(
    t.PurchaseTime,
    lambda n: f"{n.which} purchase{_product(n.product_id)} {_when(n.op, n.value)}",
)
_register(
    t.Blank,
    lambda n: (
        f"{'External User ID' if n.field == 'external_id' else 'Email Address'} "
        + ("is blank" if n.blank else "is not blank")
    ),
)
_register(
    t.ExternalIdEquals,
    lambda n: f'External User ID {"does not equal" if n.negate else "equals"} "{n.value}"',
)
_register(
    t.Subscription,
    lambda n: (
        f"{n.channel.title()} subscription status {'is not' if n.negate else 'is'} "
        + n.value.replace("_", "-")
    ),
)
_register(t.LastUsedApp, lambda n: f"last used app {_when(n.op, n.value)}")
_register(t.RandomBucket, lambda n: f"random bucket # {NUMBER_WORDS[n.op]} {n.value}")
