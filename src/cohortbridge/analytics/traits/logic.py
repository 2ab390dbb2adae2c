"""Pure rules of user property and computation syncs (spec amplitude §4.3, §6.3): cadences,
who is a candidate, and what changed since engage last took a value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson

from cohortbridge.analytics.streams.logic import Identifier

CADENCES = {"once": None, "hourly": 3600, "daily": 86400}
ACTIVE_WINDOW = timedelta(days=90)
PAGE = 1000


class InvalidTraitSync(ValueError):
    pass


def cadence(value: str) -> str:
    if value not in CADENCES:
        raise InvalidTraitSync(f"cadence {value!r}: property and computation syncs run once, "
                               "hourly or daily (never real-time)")  # fmt: skip
    return value


def _same(a: Any, b: Any) -> bool:
    # By their JSON: 1, 1.0 and true are different values to Braze.
    return orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
        b, option=orjson.OPT_SORT_KEYS
    )


@dataclass(frozen=True)
class Planned:
    amplitude_id: int
    identifier: str  # "<type>:<value>", as held
    value: Any
    body: dict[str, Any]  # the /users/track attributes object


@dataclass(frozen=True)
class Verdict:
    planned: Planned | None = None
    unchanged: bool = False
    skipped: bool = False


def decide(
    ident: Identifier, attribute: str, *, amplitude_id: int, user_id: str | None,
    user_properties: Mapping[str, Any], value: Any, held: tuple[str, Any] | None,
) -> Verdict:  # fmt: skip
    """What to do with one active user: send their value, or not (unchanged, or no identifier).

    A user who never had a value is not sent; one whose value went away is sent null, which
    removes the attribute. An identifier that changed (the user logged in) sends again."""
    id_value = ident.value(user_id, user_properties)
    if id_value is None:
        return Verdict(skipped=True)
    key = f"{ident.type}:{id_value}"
    if held is None and value is None:
        return Verdict(skipped=True)
    if held is not None and held[0] == key and _same(held[1], value):
        return Verdict(unchanged=True)
    # Explicitly false: these syncs create the users engage does not have (aliases included).
    body = {**ident.fields(id_value), attribute: value, "_update_existing_only": False}
    return Verdict(planned=Planned(amplitude_id, key, value, body))
