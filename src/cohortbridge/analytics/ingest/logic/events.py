"""Validation of ingested events (spec amplitude §1.2–§1.4): pure, no I/O.

A request is applied whole or not at all, as the SDKs expect: a 400 names every offending
event by index (``events_with_invalid_fields``, ``events_with_missing_fields``,
``events_with_invalid_id_lengths``) and the SDK drops those and sends the rest again.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cohortbridge.analytics.identity import properties

MAX_STRING = 1024
MAX_DEPTH = 40
MAX_PROPERTY_KEYS = 1024
DEFAULT_MIN_ID_LENGTH = 5
# Placeholder ids Amplitude refuses (spec amplitude §1.3).
INVALID_IDS = frozenset({
    "anonymous", "nil", "none", "null", "n/a", "na", "undefined", "unknown", '""',
    "00000000-0000-0000-0000-000000000000", "{}", "lmy47d", "0", "-1",
})  # fmt: skip
INVALID_FIELDS = "Invalid field values on some events"
INVALID_ID_LENGTH = "Invalid id length for user_id or device_id"
# Top-level event keys kept as columns or read by the pipeline; every other key goes to ``data``.
COLUMNS = frozenset({
    "user_id", "device_id", "event_type", "time", "event_properties", "user_properties",
    "session_id", "insert_id", "$skip_user_properties_sync",
})  # fmt: skip
STRING_FIELDS = ("app_version", "platform", "os_name", "os_version", "device_brand",
                 "device_manufacturer", "device_model", "carrier", "country", "region", "city",
                 "dma", "language", "productId", "revenueType", "currency", "ip", "idfa", "idfv",
                 "adid", "android_id", "android_app_set_id", "library", "partner_id",
                 "version_name", "user_agent")  # fmt: skip
NUMBER_FIELDS = ("price", "revenue", "location_lat", "location_lng")
INTEGER_FIELDS = ("quantity", "event_id", "session_id")
OBJECT_FIELDS = ("event_properties", "user_properties", "groups", "group_properties", "plan",
                 "ingestion_metadata")  # fmt: skip
# Ancillary fields a user carries from their latest event (Amplitude's default user properties).
DEVICE_FIELDS = ("app_version", "platform", "os_name", "os_version", "device_brand",
                 "device_manufacturer", "device_model", "carrier", "country", "region", "city",
                 "dma", "language", "library", "version_name")  # fmt: skip


@dataclass(frozen=True)
class Event:
    """One valid event, normalised: ids filled in, time as a UTC datetime."""

    index: int
    user_id: str | None
    device_id: str
    event_type: str
    time: datetime
    session_id: int | None
    insert_id: str | None
    event_properties: dict[str, Any]
    user_properties: dict[str, Any]
    skip_user_properties: bool
    data: dict[str, Any]

    @property
    def is_identify(self) -> bool:
        return self.event_type == "$identify"


@dataclass
class Problems:
    """What is wrong with a request's events, by field, as event indexes."""

    invalid: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    missing: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    short_ids: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    def __bool__(self) -> bool:
        return bool(self.invalid or self.missing or self.short_ids)

    def body(self) -> dict[str, Any]:
        """The 400 body the SDKs parse (spec amplitude §1.4)."""
        error = (
            INVALID_ID_LENGTH
            if self.short_ids and not (self.invalid or self.missing)
            else (INVALID_FIELDS)
        )
        body: dict[str, Any] = {"code": 400, "error": error}
        for key, found in (("events_with_invalid_fields", self.invalid),
                           ("events_with_missing_fields", self.missing),
                           ("events_with_invalid_id_lengths", self.short_ids)):  # fmt: skip
            if found:
                body[key] = {name: sorted(set(indexes)) for name, indexes in found.items()}
        return body


def default_device_id(user_id: str) -> str:
    """Amplitude sets a missing device_id "to a hashed version of user_id"."""
    return hashlib.md5(user_id.encode("utf-8"), usedforsecurity=False).hexdigest()


def _depth(value: Any, limit: int) -> bool:
    """Whether a JSON value nests no deeper than ``limit``."""
    if all(type(v) in _FLAT for v in value.values()):
        return True  # the common case: a flat object of scalars
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if level > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return True


_FLAT = frozenset({str, int, float, bool, type(None)})


def truncated(value: Any) -> Any:
    """Property values: strings cut to 1,024 characters, as the SDKs do before sending."""
    kind = type(value)
    if kind is str:
        return value if len(value) <= MAX_STRING else value[:MAX_STRING]
    if kind is int or kind is float or kind is bool or value is None:
        return value
    if isinstance(value, str):
        return value[:MAX_STRING]
    if isinstance(value, dict):
        return {str(k)[:MAX_STRING]: truncated(v) for k, v in value.items()}
    if isinstance(value, list):
        return [truncated(v) for v in value]
    return value


class _Checker:
    def __init__(self, index: int, problems: Problems, min_id_length: int) -> None:
        self.index = index
        self.problems = problems
        self.min_id_length = min_id_length
        self.ok = True

    def invalid(self, name: str) -> None:
        self.problems.invalid[name].append(self.index)
        self.ok = False

    def identifier(self, raw: dict[str, Any], name: str) -> str | None:
        value = raw.get(name)
        if value is None:
            return None
        if (
            not isinstance(value, str)
            or value.strip().lower() in INVALID_IDS
            or (len(value) > MAX_STRING)
        ):
            self.invalid(name)
            return None
        if len(value) < self.min_id_length:
            self.problems.short_ids[name].append(self.index)
            self.ok = False
            return None
        return value


# What each typed top-level field must be: s(tring), n(umber), i(nteger) or o(bject).
_KINDS: dict[str, str] = {
    **dict.fromkeys(STRING_FIELDS, "s"), **dict.fromkeys(NUMBER_FIELDS, "n"),
    **dict.fromkeys(INTEGER_FIELDS, "i"), **dict.fromkeys(OBJECT_FIELDS, "o"),
}  # fmt: skip


def _right_kind(kind: str, value: Any) -> bool:
    kind_of = type(value)
    if kind == "s":
        return kind_of is str
    if kind == "i":
        return kind_of is int
    if kind == "n":
        return kind_of is int or kind_of is float
    return kind_of is dict and len(value) <= MAX_PROPERTY_KEYS and _depth(value, MAX_DEPTH)


def _check_types(raw: dict[str, Any], check: _Checker) -> None:
    # Only the keys the event has: most events carry a handful of the many known fields.
    for name, value in raw.items():
        kind = _KINDS.get(name)
        if kind is not None and value is not None and not _right_kind(kind, value):
            check.invalid(name)


def _time(raw: dict[str, Any], check: _Checker, now: datetime) -> datetime:
    """``time`` in milliseconds since the epoch only; defaults to the upload time."""
    value = raw.get("time")
    if value is None:
        return now
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 32503680000000:
        check.invalid("time")
        return now
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def has_nul(value: Any) -> bool:
    """Whether a JSON value holds U+0000 in a string or a key (PostgreSQL stores neither)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in str(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False


def check_event(
    raw: Any, index: int, problems: Problems, *, min_id_length: int, now: datetime,
    nul_possible: bool = True,
) -> Event | None:  # fmt: skip
    """The normalised event, or None after recording what is wrong with it.

    ``nul_possible=False``: the caller knows no string holds U+0000 (the request body has no
    ``\\u0000`` escape), so the walk over every value that refuses them is skipped."""
    check = _Checker(index, problems, min_id_length)
    if not isinstance(raw, dict):
        check.invalid("event")
        return None
    if nul_possible:
        for name in [k for k, v in raw.items() if has_nul(k) or has_nul(v)]:
            check.invalid(name)
    event_type = raw.get("event_type")
    if event_type is None or event_type == "":
        problems.missing["event_type"].append(index)
        check.ok = False
    elif not isinstance(event_type, str) or len(event_type) > MAX_STRING:
        check.invalid("event_type")
    user_id = check.identifier(raw, "user_id")
    device_id = check.identifier(raw, "device_id")
    if raw.get("user_id") is None and raw.get("device_id") is None:
        problems.missing["user_id"].append(index)
        check.ok = False
    moment = _time(raw, check, now)
    _check_types(raw, check)
    props = raw.get("user_properties")
    if isinstance(props, dict) and not properties.is_valid(props):
        check.invalid("user_properties")
    insert_id = raw.get("insert_id")
    if insert_id is not None and (not isinstance(insert_id, str) or len(insert_id) > MAX_STRING):
        check.invalid("insert_id")
    if not check.ok:
        return None
    return Event(
        index=index,
        user_id=user_id,
        device_id=device_id or default_device_id(user_id or ""),
        event_type=str(event_type),
        time=moment,
        session_id=raw.get("session_id"),
        insert_id=insert_id,
        event_properties=truncated(raw.get("event_properties") or {}),
        user_properties=truncated(raw.get("user_properties") or {}),
        skip_user_properties=raw.get("$skip_user_properties_sync") is True,
        data={k: truncated(v) for k, v in raw.items() if v is not None and k not in COLUMNS},
    )


def check_events(
    raws: list[Any], *, min_id_length: int, now: datetime, nul_possible: bool = True
) -> tuple[list[Event], Problems]:
    problems = Problems()
    events: list[Event] = []
    for index, raw in enumerate(raws):
        event = check_event(raw, index, problems, min_id_length=min_id_length, now=now,
                            nul_possible=nul_possible)  # fmt: skip
        if event is not None:
            events.append(event)
    return events, problems


def min_id_length_of(options: Any) -> int | None:
    """``options.min_id_length``: None when absent, -1 when invalid."""
    if not isinstance(options, dict) or options.get("min_id_length") is None:
        return None
    value = options["min_id_length"]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return -1
    return value
