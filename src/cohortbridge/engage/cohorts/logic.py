"""Pure rules of the partner cohort import (spec braze §1.5–§1.8)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cohortbridge.engage.users.logic.times import parse_time

MAX_IDS = 1000

COHORT_ID_INVALID = "cohort_id must be a valid string"
CHANGES_INVALID = (
    "cohort_changes must be an array of objects each with key user_ids and/or device_ids "
    "mapping to an array of strings, or an aliases object"
)
TOO_MANY_IDS = "Only 1,000 user_ids, device_ids, and aliases are allowed per request"
NAME_INVALID = "name must be a non-empty string"
CREATED_AT_INVALID = "created_at must be a valid time as an ISO-8601 string"

Alias = tuple[str, str]  # (alias_label, alias_name)


class CohortRequestError(ValueError):
    """The request is refused with HTTP 400 and this message."""


@dataclass(frozen=True)
class Change:
    """One ``cohort_changes`` object: ids to add, or to remove when ``remove``."""

    user_ids: tuple[str, ...]
    device_ids: tuple[str, ...]
    aliases: tuple[Alias, ...]
    remove: bool

    def groups(self) -> list[tuple[str, list[Any]]]:
        """The change's identifiers by kind, each list without repeats."""
        groups: list[tuple[str, list[Any]]] = [
            ("external_id", sorted(set(self.user_ids))),
            ("device_id", sorted(set(self.device_ids))),
            ("user_alias", sorted(set(self.aliases))),
        ]
        return [(kind, values) for kind, values in groups if values]


@dataclass(frozen=True)
class NameUpdate:
    cohort_id: str
    name: str
    created_at: datetime


def cohort_id_of(payload: dict[str, Any]) -> str:
    value = payload.get("cohort_id")
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        raise CohortRequestError(COHORT_ID_INVALID)
    return value


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise CohortRequestError(CHANGES_INVALID)
    return tuple(value)


def _aliases(value: Any) -> tuple[Alias, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise CohortRequestError(CHANGES_INVALID)
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise CohortRequestError(CHANGES_INVALID)
        label, name = item.get("alias_label"), item.get("alias_name")
        if not (isinstance(label, str) and isinstance(name, str)):
            raise CohortRequestError(CHANGES_INVALID)
        out.append((label, name))
    return tuple(out)


def _change(item: Any) -> Change:
    if not isinstance(item, dict) or not {"user_ids", "device_ids", "aliases"} & set(item):
        raise CohortRequestError(CHANGES_INVALID)
    remove = item.get("should_remove", False)
    if remove is None:
        remove = False
    if not isinstance(remove, bool):
        raise CohortRequestError(CHANGES_INVALID)
    return Change(
        user_ids=_strings(item.get("user_ids")),
        device_ids=_strings(item.get("device_ids")),
        aliases=_aliases(item.get("aliases")),
        remove=remove,
    )


def parse_changes(payload: dict[str, Any]) -> list[Change]:
    """The ``cohort_changes`` of a users request, validated; raises ``CohortRequestError``."""
    raw = payload.get("cohort_changes")
    if not isinstance(raw, list):
        raise CohortRequestError(CHANGES_INVALID)
    changes = [_change(item) for item in raw]
    if sum(len(c.user_ids) + len(c.device_ids) + len(c.aliases) for c in changes) > MAX_IDS:
        raise CohortRequestError(TOO_MANY_IDS)
    return changes


def parse_name(payload: dict[str, Any]) -> NameUpdate:
    cohort_id = cohort_id_of(payload)
    name = payload.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CohortRequestError(NAME_INVALID)
    created_at = parse_time(payload.get("created_at"))
    if created_at is None:
        raise CohortRequestError(CREATED_AT_INVALID)
    return NameUpdate(cohort_id=cohort_id, name=name, created_at=created_at)


@dataclass
class Tally:
    """Counts of one users request, applied change by change in array order.

    ``added`` and ``removed`` are net: a profile added and removed again by the same request
    counts as neither, and adding a member or removing a non-member counts as nothing.
    """

    matched: int = 0
    unmatched: int = 0
    before: dict[int, bool] = field(default_factory=dict)  # membership before this request
    after: dict[int, bool] = field(default_factory=dict)

    def record_adds(self, asked: int, rows: list[tuple[int, bool]]) -> None:
        """``rows``: (profile id, inserted by this request) for every matched profile."""
        self.matched += len(rows)
        self.unmatched += asked - len(rows)
        for profile_id, new in rows:
            self.before.setdefault(profile_id, not new)
            self.after[profile_id] = True

    def record_removes(self, asked: int, matched: list[int], removed: list[int]) -> None:
        """``matched``: profiles the ids matched; ``removed``: those that were members."""
        self.matched += len(matched)
        self.unmatched += asked - len(matched)
        members = set(removed)
        for profile_id in matched:
            self.before.setdefault(profile_id, profile_id in members)
            self.after[profile_id] = False

    @property
    def added(self) -> int:
        return sum(1 for pid, now in self.after.items() if now and not self.before[pid])

    @property
    def removed(self) -> int:
        return sum(1 for pid, now in self.after.items() if not now and self.before[pid])


def display_title(partner_display_name: str, name: str | None, cohort_id: str) -> str:
    """``[Amplitude] <name>: <cohort_id>`` unless the partner already sent such a title."""
    prefix = f"[{partner_display_name}]"
    if name and name.startswith(prefix):
        return name
    return f"{prefix} {name or cohort_id}: {cohort_id}"
