"""Combining two profiles into one (spec braze §3.8, §4): what the survivor keeps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cohortbridge.engage.users.logic.attributes import ProfileState

PRIORITIES = frozenset(
    {"identified", "unidentified", "most_recently_updated", "least_recently_updated"}
)


def fill_missing(target: ProfileState, source: ProfileState) -> ProfileState:
    """The survivor's fields, completed by the other profile's where it has none.

    The identified profile's non-null values win (e.g. its first name is kept); standard
    fields, standard documents and custom attributes are each filled key by key.
    """
    columns = dict(target.columns)
    for name, value in source.columns.items():
        if columns.get(name) is None and value is not None:
            columns[name] = value
    document = {**source.document, **target.document}
    custom = {**source.custom, **target.custom}
    return ProfileState(columns=columns, document=document, custom=custom)


def check_prioritization(value: Any) -> list[str]:
    """A ``prioritization`` array: known values, at most one of identified/unidentified."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(v in PRIORITIES for v in value):
        raise ValueError("'prioritization' must be an array of identified, unidentified, "
                         "most_recently_updated or least_recently_updated")  # fmt: skip
    if "identified" in value and "unidentified" in value:
        raise ValueError("'prioritization' may hold only one of identified and unidentified")
    return list(value)


def choose(candidates: Sequence[Mapping[str, Any]], prioritization: list[str]) -> int | None:
    """The one profile an email or phone designates, or None when it stays ambiguous.

    Candidates carry ``id``, ``external_id`` and ``updated_at``.
    """
    pool = list(candidates)
    if "identified" in prioritization:
        pool = [c for c in pool if c["external_id"] is not None]
    if "unidentified" in prioritization:
        pool = [c for c in pool if c["external_id"] is None]
    if len(pool) > 1:
        order = _recency(prioritization)
        if order is None:
            return None
        pool = sorted(pool, key=lambda c: (c["updated_at"], c["id"]), reverse=order)[:1]
    return int(pool[0]["id"]) if pool else None


def _recency(prioritization: list[str]) -> bool | None:
    for item in prioritization:
        if item == "most_recently_updated":
            return True
        if item == "least_recently_updated":
            return False
    return None
