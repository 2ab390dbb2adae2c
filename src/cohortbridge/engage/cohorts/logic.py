"""Pure rules of the partner cohort import (spec braze §1.5–§1.8)."""

from __future__ import annotations

from dataclasses import dataclass
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
IdKey = tuple[str, Any]  # ("external_id" | "device_id" | "user_alias", value)


class CohortRequestError(ValueError):
    """The request is refused with HTTP 400 and this message."""


@dataclass(frozen=True)
class Change:
    """One ``cohort_changes`` object: ids to add, or to remove when ``remove``."""

    user_ids: tuple[str, ...]
    device_ids: tuple[str, ...]
    aliases: tuple[Alias, ...]
    remove: bool

    def identifiers(self) -> list[IdKey]:
        return (
            [("external_id", x) for x in self.user_ids]
            + [("device_id", x) for x in self.device_ids]
            + [("user_alias", a) for a in self.aliases]
        )


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
class Outcome:
    """What a users request does: final intent per matched profile and the counts."""

    intent: dict[int, bool]  # profile id → True to be a member, False to not be
    matched: int = 0
    unmatched: int = 0


def resolve_changes(changes: list[Change], matches: dict[IdKey, int]) -> Outcome:
    """Apply change objects in array order: a later object about a profile wins."""
    outcome = Outcome(intent={})
    for change in changes:
        for key in change.identifiers():
            profile_id = matches.get(key)
            if profile_id is None:
                outcome.unmatched += 1
                continue
            outcome.matched += 1
            outcome.intent[profile_id] = not change.remove
    return outcome


def membership_delta(intent: dict[int, bool], members: set[int]) -> tuple[list[int], list[int]]:
    """(to add, to remove): adding a member or removing a non-member does nothing."""
    add = sorted(pid for pid, wanted in intent.items() if wanted and pid not in members)
    remove = sorted(pid for pid, wanted in intent.items() if not wanted and pid in members)
    return add, remove


def display_title(partner_display_name: str, name: str | None, cohort_id: str) -> str:
    """``[Amplitude] <name>: <cohort_id>`` unless the partner already sent such a title."""
    prefix = f"[{partner_display_name}]"
    if name and name.startswith(prefix):
        return name
    return f"{prefix} {name or cohort_id}: {cohort_id}"
