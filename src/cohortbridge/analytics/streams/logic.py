"""Pure rules of event streaming to Braze (spec amplitude §4.2): the stream's configuration,
which events it takes, the ``/users/track`` objects it sends, and the delivery schedule.

An identifier mapping (shared with property syncs) pairs an Amplitude value — the user id or a
user property — with a Braze identifier type; a user without that value is not sent.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cohortbridge.analytics.cohorts.logic.definition import (
    InvalidDefinition,
    PropFilter,
    prop_filter,
)

ID_TYPES = ("external_id", "user_alias", "braze_id", "email")
MAX_OBJECTS = 75  # per array of one /users/track request (Braze's cap)
PARALLEL = 4  # requests in flight per stream
# Rows held per claim: sixteen full requests, sent four at a time and settled together, so a
# transaction (on SQLite, a turn of the one writer) serves 1,200 events, not 300.
CLAIM = MAX_OBJECTS * 16
# Within one attempt: three tries on 5xx, 429 and transport errors, 100 ms doubling with 50%
# jitter, given up after 4 s (spec amplitude §4.2).
TRIES = 3
FIRST_RETRY_S = 0.1
TRY_BUDGET_S = 4.0
# Then ten attempts over four hours: the delays before attempts 2 … 10, in minutes.
ATTEMPT_DELAYS_MIN = (1, 2, 4, 8, 15, 30, 45, 60, 75)
ATTEMPTS = len(ATTEMPT_DELAYS_MIN) + 1
USER_PREFIX = "gp:"  # a where-filter on a user property, as in Amplitude's charts
RESERVED_PROPERTIES = frozenset({"time", "event_name"})  # Braze rejects them in properties


class InvalidStream(ValueError):
    pass


@dataclass(frozen=True)
class Identifier:
    property: str  # user_id, or a user property's name
    type: str  # one of ID_TYPES
    alias_label: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"property": self.property, "type": self.type, "alias_label": self.alias_label}

    def value(self, user_id: str | None, user_properties: Mapping[str, Any]) -> str | None:
        """The user's identifier, or None when the user has none (then nothing is sent)."""
        raw = user_id if self.property == "user_id" else user_properties.get(self.property)
        if isinstance(raw, bool) or raw is None:
            return None
        if isinstance(raw, int | float):
            raw = str(raw)
        return raw if isinstance(raw, str) and raw.strip() else None

    def fields(self, value: str) -> dict[str, Any]:
        if self.type == "user_alias":
            return {"user_alias": {"alias_name": value, "alias_label": self.alias_label}}
        return {self.type: value}


def identifier(raw: Any) -> Identifier:
    if not isinstance(raw, Mapping):
        raise InvalidStream("identifier must be an object: {property, type, alias_label}")
    prop, kind, label = raw.get("property", "user_id"), raw.get("type"), raw.get("alias_label")
    if not isinstance(prop, str) or not prop.strip():
        raise InvalidStream("identifier property must be user_id or a user property's name")
    if kind not in ID_TYPES:
        raise InvalidStream(f"identifier type must be one of {', '.join(ID_TYPES)}")
    if kind == "user_alias":
        if not isinstance(label, str) or not label.strip():
            raise InvalidStream("a user_alias identifier needs an alias label")
    else:
        label = None
    return Identifier(prop, kind, label)


@dataclass(frozen=True)
class Stream:
    id: str
    app_id: str | None
    identifier: Identifier
    event_types: frozenset[str] | None  # None: every event
    filters: tuple[PropFilter, ...]
    event_properties: tuple[str, ...]
    user_properties: tuple[str, ...]
    update_existing_only: bool
    send_events: bool
    send_users: bool
    user_attributes: tuple[str, ...]


def _names(raw: Any, what: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(n, str) and n for n in raw):
        raise InvalidStream(f"{what} must be a list of names")
    return tuple(dict.fromkeys(raw))


def _forwardable(names: tuple[str, ...], what: str) -> tuple[str, ...]:
    for name in names:
        if name.startswith("$") or name in RESERVED_PROPERTIES or len(name) > 255:
            raise InvalidStream(f"{what}: Braze does not take a property named {name!r}")
    return names


def parse_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a stream's configuration; the normalised document that is stored."""
    types = raw.get("event_types")
    if types is not None:
        names = _names(types, "event_types")
        if not names:
            raise InvalidStream("event_types must name at least one event type (or be omitted)")
        if any(n in ("_all", "_identify") or n.startswith("$") for n in names):
            raise InvalidStream("_all, _identify and $-events cannot be streamed")
        types = list(names)
    filters = raw.get("filters") or []
    if not isinstance(filters, list):
        raise InvalidStream("filters must be a list of {prop, op, values}")
    for index, found in enumerate(filters):
        try:
            prop_filter(found, f"filters[{index}]")
        except InvalidDefinition as error:
            raise InvalidStream(str(error)) from error
    config = {
        "event_types": types,
        "filters": filters,
        "event_properties": list(_forwardable(_names(raw.get("event_properties"),
                                                     "event_properties"), "event_properties")),
        "user_properties": list(_forwardable(_names(raw.get("user_properties"),
                                                    "user_properties"), "user_properties")),
        "identifier": identifier(raw.get("identifier", {"type": "external_id"})).as_json(),
        "update_existing_only": bool(raw.get("update_existing_only", False)),
        "send_events": bool(raw.get("send_events", True)),
        "send_users": bool(raw.get("send_users", False)),
        "user_attributes": list(_names(raw.get("user_attributes"), "user_attributes")),
    }  # fmt: skip
    if not (config["send_events"] or config["send_users"]):
        raise InvalidStream("a stream sends events, users or both")
    if config["send_users"] and not config["user_attributes"]:
        raise InvalidStream("send_users needs the user properties to send (user_attributes)")
    return config


def stream_of(stream_id: str, app_id: str | None, config: Mapping[str, Any]) -> Stream:
    types = config["event_types"]
    return Stream(
        id=stream_id, app_id=app_id, identifier=identifier(config["identifier"]),
        event_types=frozenset(types) if types is not None else None,
        filters=tuple(prop_filter(f, "filters") for f in config["filters"]),
        event_properties=tuple(config["event_properties"]),
        user_properties=tuple(config["user_properties"]),
        update_existing_only=config["update_existing_only"], send_events=config["send_events"],
        send_users=config["send_users"], user_attributes=tuple(config["user_attributes"]),
    )  # fmt: skip


def as_text(value: Any) -> str | None:
    """A scalar as Amplitude compares it (``true``, ``5``, ``2.5``); None for anything else."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def holds(found: PropFilter, props: Mapping[str, Any]) -> bool:
    """A where-filter on one property document; two-valued, as cohorts compile it to SQL."""
    value = props.get(found.prop)
    words = [str(v) for v in found.values]
    text = as_text(value)
    if found.op in ("is", "is not"):
        hit = text is not None and text in words
    elif found.op in ("contains", "does not contain"):
        hit = text is not None and any(w.lower() in text.lower() for w in words)
    elif found.op in ("set is", "set is not"):
        members = {as_text(v) for v in value} if isinstance(value, list) else set()
        hit = any(w in members for w in words)
    else:
        number, bound = _number(value), float(found.values[0])
        if number is None:
            return False
        compared = {"less": number < bound, "less or equal": number <= bound,
                    "greater": number > bound, "greater or equal": number >= bound}  # fmt: skip
        return compared[found.op]
    return not hit if found.op in ("is not", "does not contain", "set is not") else hit


def takes(
    stream: Stream, event_type: str, event_props: Mapping[str, Any],
    user_props: Mapping[str, Any],
) -> bool:  # fmt: skip
    if not stream.send_events or event_type.startswith("$"):
        return False
    if stream.event_types is not None and event_type not in stream.event_types:
        return False
    for found in stream.filters:
        if found.prop.startswith(USER_PREFIX):
            user_filter = PropFilter(found.prop[len(USER_PREFIX) :], found.op, found.values)
            if not holds(user_filter, user_props):
                return False
        elif not holds(found, event_props):
            return False
    return True


def braze_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _update_flag(stream: Stream) -> dict[str, Any]:
    # An alias-only profile is created only when the flag is explicitly false (spec braze §3.3).
    if stream.update_existing_only:
        return {"_update_existing_only": True}
    if stream.identifier.type == "user_alias":
        return {"_update_existing_only": False}
    return {}


def event_object(
    stream: Stream, *, user_id: str | None, event_type: str, time: datetime,
    event_props: Mapping[str, Any], user_props: Mapping[str, Any],
) -> dict[str, Any] | None:  # fmt: skip
    """The ``events`` object of /users/track; None when the user has no identifier."""
    value = stream.identifier.value(user_id, user_props)
    if value is None:
        return None
    properties = {n: user_props[n] for n in stream.user_properties if n in user_props}
    properties.update({n: event_props[n] for n in stream.event_properties if n in event_props})
    body: dict[str, Any] = {**stream.identifier.fields(value), "name": event_type,
                            "time": braze_time(time)}  # fmt: skip
    if stream.app_id:
        body["app_id"] = stream.app_id
    if properties:
        body["properties"] = properties
    return {**body, **_update_flag(stream)}


def user_object(
    stream: Stream, *, user_id: str | None, before: Mapping[str, Any],
    after: Mapping[str, Any],
) -> dict[str, Any] | None:  # fmt: skip
    """The ``attributes`` object for a user whose selected properties changed (None: no change
    or no identifier). A property that was unset is sent as null, which removes it."""
    if not stream.send_users:
        return None
    changed = {n: after.get(n) for n in stream.user_attributes if before.get(n) != after.get(n)}
    value = stream.identifier.value(user_id, after)
    if not changed or value is None:
        return None
    return {**stream.identifier.fields(value), **changed, **_update_flag(stream)}


def retry_delay(try_number: int, rng: random.Random | None = None) -> float:
    """Seconds before immediate retry ``try_number`` (1-based): 0.1, 0.2 … with ±50% jitter."""
    base: float = FIRST_RETRY_S * 2 ** (try_number - 1)
    return base * (0.5 + (rng or random).random())


def next_attempt(attempts_done: int, now: datetime) -> datetime | None:
    """When to try again after ``attempts_done`` failed attempts; None: give up (dead)."""
    if attempts_done >= ATTEMPTS:
        return None
    return now + timedelta(minutes=ATTEMPT_DELAYS_MIN[attempts_done - 1])


@dataclass(frozen=True)
class Request:
    """One /users/track body and the outbox rows behind each position of its arrays."""

    body: dict[str, list[dict[str, Any]]]
    rows: dict[tuple[str, int], int]  # (input_array, index) → outbox id


def requests(rows: list[tuple[int, str, dict[str, Any]]]) -> list[Request]:
    """Outbox rows (id, kind, payload), in order, packed into requests of at most 75 objects
    per array."""
    packed: list[Request] = []
    body: dict[str, list[dict[str, Any]]] = {}
    positions: dict[tuple[str, int], int] = {}
    for row_id, kind, payload in rows:
        if len(body.get(kind, ())) == MAX_OBJECTS:
            packed.append(Request(body, positions))
            body, positions = {}, {}
        array = body.setdefault(kind, [])
        positions[(kind, len(array))] = row_id
        array.append(payload)
    if body:
        packed.append(Request(body, positions))
    return packed
