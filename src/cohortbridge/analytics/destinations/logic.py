"""Pure rules of the Braze destination (spec amplitude §4.1): identifier mappings, the change
objects of the partner cohort import, and the retry schedule."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

CADENCES = {"once": None, "hourly": 3600, "daily": 86400, "realtime": 60}
MAX_IDS = 1000  # per request, across user_ids, device_ids and aliases (Braze's cap)
PARALLEL = 4
RETRIES = 8  # then the run fails; the next run resends what was not acknowledged
FIRST_DELAY_S = 1.0
RETRYABLE = frozenset({423, 429, 500, 502, 503, 504})
UNRESOLVED = "Unresolved mapping"
_IDENTIFIER = re.compile(
    r"^(user_id|device_id|alias:[^\s:][^:]{0,254}|property:[^\s:][^:]{0,254})$"
)


class InvalidSync(ValueError):
    pass


def identifiers(values: Iterable[str]) -> list[str]:
    """Validated identifier mappings, in priority order, without repeats."""
    chosen = list(dict.fromkeys(values))
    if not chosen:
        raise InvalidSync("give at least one identifier: user_id, device_id, alias:<label> or "
                          "property:<name>")  # fmt: skip
    for value in chosen:
        if not _IDENTIFIER.match(value):
            raise InvalidSync(f"{value!r} is not an identifier: use user_id, device_id, "
                              "alias:<label> or property:<name>")  # fmt: skip
    return chosen


def cadence(value: str) -> str:
    if value not in CADENCES:
        raise InvalidSync(f"cadence {value!r} is not one of {', '.join(CADENCES)}")
    return value


def cohort_title(cohort_name: str, cohort_id: str) -> str:
    """The name sent to Braze: ``[Amplitude] <name>: <cohort_id>`` (spec amplitude §4.1)."""
    return f"[Amplitude] {cohort_name}: {cohort_id}"


@dataclass(frozen=True)
class Change:
    amplitude_id: int
    kind: str  # user_id | device_id | alias:<label> | property:<name>
    value: str
    remove: bool


def _entry(change: Change) -> tuple[str, Any]:
    if change.kind.startswith("alias:"):
        return "aliases", {"alias_name": change.value, "alias_label": change.kind[6:]}
    if change.kind == "device_id":
        return "device_ids", change.value
    return "user_ids", change.value  # user_id and property mappings name external ids


def batches(changes: Iterable[Change], size: int = MAX_IDS) -> Iterator[list[Change]]:
    batch: list[Change] = []
    for change in changes:
        batch.append(change)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def cohort_changes(batch: list[Change]) -> list[dict[str, Any]]:
    """The ``cohort_changes`` of one request: an add object and a remove object, as needed."""
    objects: list[dict[str, Any]] = []
    for remove in (True, False):
        grouped: dict[str, list[Any]] = {}
        for change in batch:
            if change.remove == remove:
                key, entry = _entry(change)
                grouped.setdefault(key, []).append(entry)
        if grouped:
            objects.append({**grouped, **({"should_remove": True} if remove else {})})
    return objects


def backoff(attempt: int) -> float:
    """Seconds before retry ``attempt`` (1-based): 1, 2, 4, … 128 — over two minutes."""
    return float(FIRST_DELAY_S * 2 ** (attempt - 1))
