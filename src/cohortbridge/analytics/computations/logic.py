"""Computation specs (spec amplitude §4.3): pure validation.

``{"kind": "count", "event_type": "Song Played", "filters": [...], "time_type": "rolling",
"time_value": 30}``; ``aggregation`` adds ``"aggregate": "sum" | "min" | "max" | "avg"`` and
``"prop"``; ``first`` / ``last`` take ``"prop"``: the value of that property on the user's first
or last such event in the window. Values are computed for the users active in the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from cohortbridge.analytics.cohorts.logic import definition as d

KINDS = ("count", "aggregation", "first", "last")
AGGREGATES = ("sum", "min", "max", "avg")


@dataclass(frozen=True)
class Spec:
    kind: Literal["count", "aggregation", "first", "last"]
    event_type: str
    prop: str | None
    aggregate: Literal["sum", "min", "max", "avg"] | None
    filters: tuple[d.PropFilter, ...]
    window: d.Window


FIELDS = ("kind", "event_type", "prop", "aggregate", "filters", "time_type", "time_value",
          "offset", "start", "end")  # fmt: skip


def parse(raw: Any, path: str = "spec") -> Spec:
    body = d.fields_of(raw, path, FIELDS)
    kind = d.choice(body, "kind", path, KINDS)
    prop = d.text_field(body, "prop", path) if kind != "count" else None
    aggregate = d.choice(body, "aggregate", path, AGGREGATES) if kind == "aggregation" else None
    filters = body.get("filters") or []
    if not isinstance(filters, list):
        raise d.InvalidDefinition(f"{path}.filters", "must be an array of property filters")
    window = d.window(body, path)
    if window.kind == "first_use":
        raise d.InvalidDefinition(f"{path}.time_type", "computations take rolling, since, "
                                                       "between or all")  # fmt: skip
    return Spec(
        kind=kind,  # type: ignore[arg-type]
        event_type=d.text_field(body, "event_type", path),
        prop=prop,
        aggregate=aggregate,  # type: ignore[arg-type]
        filters=tuple(d.prop_filter(f, f"{path}.filters[{i}]") for i, f in enumerate(filters)),
        window=window,
    )


def as_string(value: Any) -> str | None:
    """The User Profile API shows computation values as strings ("5000000.0", "3")."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)
