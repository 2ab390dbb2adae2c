"""The Identify API's identifications (spec amplitude §2) as identify events: pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cohortbridge.analytics.ingest.logic.events import Event, Problems, check_event

# Setting one field of a group resets the others unless they are given too.
COUPLED = (
    ("platform", "os_name", "os_version", "device_brand", "device_manufacturer", "device_model",
     "carrier"),
    ("country", "region", "city", "dma"),
)  # fmt: skip
IDENTIFY_FIELDS = ("user_id", "device_id", "user_properties", "groups", "app_version",
                   "platform", "os_name", "os_version", "device_brand", "device_manufacturer",
                   "device_model", "carrier", "country", "region", "city", "dma", "language",
                   "paying", "start_version")  # fmt: skip


def _with_resets(data: dict[str, Any]) -> dict[str, Any]:
    for group in COUPLED:
        if any(name in data for name in group):
            data = {**{name: None for name in group}, **data}
    return data


def identifications(raw: Any, *, min_id_length: int, now: datetime) -> tuple[list[Event], Problems]:
    """Events of type ``$identify`` for a single identification or an array of them."""
    items = raw if isinstance(raw, list) else [raw]
    problems = Problems()
    found: list[Event] = []
    for index, item in enumerate(items):
        raw = item
        if isinstance(item, dict):
            raw = {k: v for k, v in item.items() if k in IDENTIFY_FIELDS}
            raw["event_type"] = "$identify"
        event = check_event(raw, index, problems, min_id_length=min_id_length, now=now)
        if event is not None:
            found.append(_reset(event))
    return found, problems


def _reset(event: Event) -> Event:
    return Event(
        index=event.index, user_id=event.user_id, device_id=event.device_id,
        event_type=event.event_type, time=event.time, session_id=None, insert_id=None,
        event_properties={}, user_properties=event.user_properties, skip_user_properties=False,
        data=_with_resets(event.data),
    )  # fmt: skip
