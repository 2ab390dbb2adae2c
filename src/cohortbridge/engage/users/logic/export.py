"""The user export object of /users/export/ids and segment exports (spec braze §3.11)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson

from cohortbridge.engage.users.logic.customs import TIME_KEY, is_time
from cohortbridge.engage.users.logic.times import format_stored_time

FIELDS = (
    "created_at", "external_id", "user_aliases", "braze_id", "first_name", "last_name",
    "email", "dob", "home_city", "country", "phone", "language", "time_zone",
    "last_coordinates", "gender", "total_revenue", "push_subscribe", "email_subscribe",
    "custom_attributes", "custom_events", "purchases", "devices", "push_tokens", "apps",
    "random_bucket", "email_open_tracking_disabled", "email_click_tracking_disabled",
    "date_of_first_session", "date_of_last_session", "facebook", "twitter",
    "subscription_groups", "marked_email_as_spam_at",
)  # fmt: skip
KNOWN_FIELDS = frozenset(FIELDS)
_PLAIN_COLUMNS = (
    "external_id", "braze_id", "first_name", "last_name", "email", "dob", "home_city",
    "country", "phone", "language", "time_zone", "gender", "push_subscribe", "email_subscribe",
    "random_bucket",
)  # fmt: skip
_DOCUMENT = (
    "email_open_tracking_disabled", "email_click_tracking_disabled", "date_of_first_session",
    "date_of_last_session", "facebook", "twitter", "subscription_groups",
    "marked_email_as_spam_at",
)  # fmt: skip


def created_at_text(row: Mapping[Any, Any]) -> str:
    """Braze's sample: ``"2020-07-10 15:00:00.000 UTC"``."""
    moment: datetime = row["created_at"]
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} UTC"


def plain_value(value: Any) -> Any:
    """A stored custom attribute value as the export shows it (times as ISO strings)."""
    if is_time(value):
        return value[TIME_KEY]
    if isinstance(value, dict):
        return {key: plain_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_value(item) for item in value]
    return value


def history(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Event or purchase entries from ``(name, count, first_at, last_at)`` as stored."""
    return [
        {
            "name": name,
            "first": format_stored_time(first),
            "last": format_stored_time(last),
            "count": int(count),
        }
        for name, count, first, last in rows
    ]


@dataclass(frozen=True)
class _Shape:
    """What an export of some fields builds, worked out once per set of fields."""

    plain: tuple[str, ...]
    document: tuple[str, ...]
    created_at: bool
    coordinates: bool
    revenue: bool
    custom: bool
    histories: bool


@lru_cache(maxsize=64)
def _shape(fields: frozenset[str] | None) -> _Shape:
    wanted = KNOWN_FIELDS if fields is None else fields
    return _Shape(
        plain=tuple(name for name in _PLAIN_COLUMNS if name in wanted),
        document=tuple(name for name in _DOCUMENT if name in wanted),
        created_at="created_at" in wanted,
        coordinates="last_coordinates" in wanted,
        revenue="total_revenue" in wanted,
        custom="custom_attributes" in wanted,
        histories=bool(wanted & _HISTORIES),
    )


def export_object(
    row: Mapping[Any, Any],
    *,
    aliases: list[dict[str, str]],
    events: list[dict[str, Any]],
    purchases: list[dict[str, Any]],
    devices: list[dict[str, Any]],
    fields: frozenset[str] | None,
) -> dict[str, Any]:
    """One user as exported; null and empty fields are left out, as Braze does. Only the
    fields asked for are built (segment exports of many users ask for few)."""
    shape = _shape(fields)
    full: dict[str, Any] = {name: row[name] for name in shape.plain}
    if shape.document or shape.coordinates:
        standard = row.get("standard") or {}
        full.update({name: standard.get(name) for name in shape.document})
        if shape.coordinates:
            location = standard.get("current_location")
            full["last_coordinates"] = (
                [location["longitude"], location["latitude"]] if location else None
            )
    if shape.created_at:
        full["created_at"] = created_at_text(row)
    if shape.revenue:
        full["total_revenue"] = float(row["total_revenue"])
    if shape.custom:
        full["custom_attributes"] = plain_value(row["custom_attributes"] or {})
    if shape.histories:
        wanted = KNOWN_FIELDS if fields is None else fields
        full.update(_histories(wanted, aliases, events, purchases, devices))
    return {k: v for k, v in full.items() if v is not None and v not in ([], {})}


_HISTORIES = frozenset({"user_aliases", "custom_events", "purchases", "devices", "push_tokens"})


def _histories(
    wanted: frozenset[str], aliases: list[dict[str, str]], events: list[dict[str, Any]],
    purchases: list[dict[str, Any]], devices: list[dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    found: dict[str, Any] = {}
    for name, value in (("user_aliases", aliases), ("custom_events", events),
                        ("purchases", purchases)):  # fmt: skip
        if name in wanted:
            found[name] = value
    if "devices" in wanted:
        found["devices"] = [{"device_id": d["device_id"]} for d in devices]
    if "push_tokens" in wanted:
        found["push_tokens"] = [
            {"app": d["app_id"], "platform": "web", "token": d["push_token"]}
            for d in devices
            if d.get("push_token")
        ]
    return found


def columns_for(fields: frozenset[str] | None) -> set[str]:
    """The profile columns an export of these fields reads (all of them for ``None``)."""
    wanted = KNOWN_FIELDS if fields is None else fields
    columns = {"id"} | {name for name in _PLAIN_COLUMNS if name in wanted}
    if wanted & {*_DOCUMENT, "last_coordinates"}:
        columns.add("standard")
    for name in ("created_at", "total_revenue", "custom_attributes"):
        if name in wanted:
            columns.add(name)
    return columns


# --- export lines written by the database (segment exports of many users) ---------------------

# The fields whose JSON text the database writes itself (``repository.export_lines``): the
# plain columns, ``created_at`` and the histories' times cut to milliseconds, the stored custom
# attributes spliced in as they are. The rest (documents inside ``standard``, revenue as a
# float, devices) is built in Python.
LINE_FIELDS = frozenset({*_PLAIN_COLUMNS, "created_at", "custom_attributes", "user_aliases",
                         "custom_events", "purchases"})  # fmt: skip
# The order export_object writes them in.
_LINE_ORDER = (*_PLAIN_COLUMNS, "created_at", "custom_attributes", "user_aliases",
               "custom_events", "purchases")  # fmt: skip


def ndjson(users: Iterable[Mapping[str, Any]]) -> bytes:
    """Export objects as newline-delimited JSON."""
    return b"".join([orjson.dumps(user) + b"\n" for user in users])


def line_fields(fields: frozenset[str]) -> tuple[str, ...] | None:
    """The fields in export_object's order, or None when the database cannot write them all."""
    if not fields <= LINE_FIELDS:
        return None
    return tuple(name for name in _LINE_ORDER if name in fields)


# A stored time inside custom attributes, ``{"$time":"…"}`` (PostgreSQL's text has a space).
_STORED_TIME = re.compile(rb'\{"\$time": ?("[^"\\]*")\}')


def unmark_times(lines: bytes) -> bytes:
    """What ``plain_value`` does, on whole export lines: each stored time becomes its string.

    Safe on the whole text: in JSON an unescaped quote only opens or closes a string, so the
    pattern cannot begin inside one (names, ids and values are all quoted), and nothing but a
    stored time is an object whose one key is ``$time`` (attribute names and nested keys
    cannot hold ``$``: logic.customs).
    """
    # Split on the pattern with its one group kept, joined again: every match replaced by
    # its group, in C (``sub`` with a group template expands it in Python per match).
    return b"".join(_STORED_TIME.split(lines))
