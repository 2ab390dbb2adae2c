"""The attributes object of /users/track: standard fields and custom attributes (B-ATTR)."""

from __future__ import annotations

import re
import uuid
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from cohortbridge.engage.users.logic import customs
from cohortbridge.engage.users.logic.identifiers import (
    EMAIL_INVALID,
    Alias,
    InvalidObject,
    parse_alias,
    valid_email,
)
from cohortbridge.engage.users.logic.times import format_time, parse_time

# Keys that say who the object is about or how to apply it: never stored as attributes.
CONTROL_KEYS = frozenset(
    {
        "external_id",
        "user_alias",
        "braze_id",
        "_update_existing_only",
        "_merge_objects",
        "push_token_import",
        "push_tokens",
        "alias_name",
        "alias_label",
        "partner",
    }
)
# Standard fields kept as columns (segmentable). Value: billable (spec braze §6).
COLUMNS: dict[str, bool] = {
    "email": True,
    "phone": True,
    "first_name": True,
    "last_name": True,
    "gender": True,
    "dob": True,
    "country": True,
    "home_city": True,
    "language": True,
    "time_zone": True,
    "email_subscribe": False,
    "push_subscribe": False,
}
# Standard fields kept in the profile's ``standard`` document.
DOCUMENT: dict[str, bool] = {
    "current_location": True,
    "date_of_first_session": True,
    "date_of_last_session": True,
    "email_open_tracking_disabled": True,
    "email_click_tracking_disabled": True,
    "facebook": True,
    "twitter": True,
    "marked_email_as_spam_at": True,
    "subscription_groups": False,
    "bio": True,
    "image_url": True,
}
SUBSCRIPTION_STATES = frozenset({"opted_in", "unsubscribed", "subscribed"})
GENDERS = {
    "m": "M",
    "male": "M",
    "f": "F",
    "female": "F",
    "o": "O",
    "other": "O",
    "n": "N",
    "not_applicable": "N",
    "p": "P",
    "prefer_not_to_say": "P",
}
_DOB = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class PushToken:
    app_id: str
    token: str
    device_id: str


@dataclass
class AttributeUpdate:
    columns: dict[str, Any] = field(default_factory=dict)
    document: dict[str, Any] = field(default_factory=dict)
    custom: list[tuple[str, customs.CustomOp]] = field(default_factory=list)
    alias: Alias | None = None
    push_tokens: list[PushToken] = field(default_factory=list)
    merge_objects: bool = False
    datapoints: int = 0


@dataclass
class ProfileState:
    """The writable part of a profile, as logic sees it."""

    columns: dict[str, Any] = field(default_factory=dict)
    document: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)


def _string(name: str, value: Any, limit: int = 255) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidObject(f"'{name}' is not valid")
    return value


def _subscription(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if value not in SUBSCRIPTION_STATES:
        code = (
            "BAD_EMAIL_SUBSCRIPTION_STATE"
            if name == "email_subscribe"
            else ("BAD_PUSH_SUBSCRIPTION_STATE")
        )
        raise InvalidObject(code)
    return str(value)


def column_value(name: str, value: Any) -> Any:
    """A standard column's value as stored; ``None`` clears it."""
    if name == "email":
        if value is not None and not valid_email(value):
            raise InvalidObject(EMAIL_INVALID)
        return value
    if name in ("email_subscribe", "push_subscribe"):
        return _subscription(name, value)
    if name == "gender":
        if value is None:
            return None
        if not isinstance(value, str) or value.lower() not in GENDERS:
            raise InvalidObject("'gender' is not valid")
        return GENDERS[value.lower()]
    if name == "dob":
        if value is not None and not (isinstance(value, str) and _DOB.match(value)):
            raise InvalidObject("'dob' is not valid")
        return value
    if name == "country":
        # ISO-3166-1 alpha-2; anything else is stored as NULL (Braze maps what it can).
        text = _string(name, value)
        return text.upper() if text and len(text) == 2 and text.isalpha() else None
    if name == "language":
        text = _string(name, value)
        return text.lower() if text and 2 <= len(text) <= 16 else None
    return _string(name, value, 64 if name == "phone" else 255)


def valid_time_zone(value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def document_value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "current_location":
        if not isinstance(value, dict) or not all(
            isinstance(value.get(k), int | float) and not isinstance(value.get(k), bool)
            for k in ("longitude", "latitude")
        ):
            raise InvalidObject("BAD_LOCATION_UPDATE")
        return {"longitude": value["longitude"], "latitude": value["latitude"]}
    if name in ("date_of_first_session", "date_of_last_session", "marked_email_as_spam_at"):
        moment = parse_time(value)
        if moment is None:
            raise InvalidObject(f"'{name}' is not valid")
        return format_time(moment)
    if name in ("email_open_tracking_disabled", "email_click_tracking_disabled"):
        if not isinstance(value, bool):
            raise InvalidObject(f"'{name}' is not valid")
        return value
    if name == "subscription_groups":
        return _subscription_groups(value)
    if name in ("facebook", "twitter") and not isinstance(value, dict):
        raise InvalidObject(f"'{name}' is not valid")
    return value


def _subscription_groups(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise InvalidObject("BAD_SUBSCRIPTION_GROUP_ARRAY")
    groups = []
    for item in value:
        if not isinstance(item, dict):
            raise InvalidObject("BAD_SUBSCRIPTION_GROUP_HASH")
        group_id = item.get("subscription_group_id")
        if not isinstance(group_id, str) or not _UUID.match(group_id):
            raise InvalidObject("BAD_SUBSCRIPTION_GROUP_ID")
        if item.get("subscription_state") not in ("subscribed", "unsubscribed"):
            raise InvalidObject("BAD_SUBSCRIPTION_GROUP_STATE")
        groups.append(
            {"subscription_group_id": group_id, "subscription_state": item["subscription_state"]}
        )
    return groups


def parse_push_tokens(value: Any) -> list[PushToken]:
    """``push_tokens``: ``[{"app_id", "token", "device_id"?}]``; a random device id if absent."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise InvalidObject("BAD_PUSH_TOKEN_VALUE")
    tokens = []
    for item in value:
        token, app_id, device_id = item.get("token"), item.get("app_id"), item.get("device_id")
        if not isinstance(token, str) or not token or len(token) > 4096:
            raise InvalidObject("BAD_PUSH_TOKEN_STRING")
        if not isinstance(app_id, str) or not app_id:
            raise InvalidObject("BAD_PUSH_TOKEN_APP_ID")
        if device_id is None:
            device_id = str(uuid.uuid4())
        if not isinstance(device_id, str) or not 8 <= len(device_id.encode()) <= 255:
            raise InvalidObject("BAD_DEVICE_ID")
        tokens.append(PushToken(app_id=app_id, token=token, device_id=device_id))
    return tokens


def parse_update(obj: dict[str, Any], has_primary: bool) -> AttributeUpdate:
    """The writes an attributes object asks for, validated; raises ``InvalidObject``.

    With no primary identifier, ``email``/``phone`` are the lookup key, so they are not writes.
    """
    merge = obj.get("_merge_objects")
    if merge is not None and not isinstance(merge, bool):
        raise InvalidObject("'_merge_objects' must be a boolean")
    update = AttributeUpdate(merge_objects=bool(merge))
    if obj.get("alias_name") is not None or obj.get("alias_label") is not None:
        update.alias = parse_alias(obj)
    if obj.get("push_tokens") is not None:
        update.push_tokens = parse_push_tokens(obj["push_tokens"])
    for key, value in obj.items():
        if key in CONTROL_KEYS or (not has_primary and key in ("email", "phone")):
            continue
        if key in COLUMNS:
            update.columns[key] = _column(key, value)
            update.datapoints += COLUMNS[key]
        elif key in DOCUMENT:
            update.document[key] = document_value(key, value)
            update.datapoints += DOCUMENT[key]
        else:
            op = customs.parse_op(key, value)
            update.custom.append((key, op))
            update.datapoints += customs.datapoints(op)
    return update


def _column(key: str, value: Any) -> Any:
    if key == "time_zone":
        # An invalid time zone is ignored, not an error (B-ATTR).
        return value if value is None or valid_time_zone(value) else _KEEP
    return column_value(key, value)


class _Keep:
    """A write that is accepted but leaves the stored value as it is."""


_KEEP = _Keep()


def apply_update(state: ProfileState, update: AttributeUpdate) -> None:
    for key, value in update.columns.items():
        if value is not _KEEP:
            state.columns[key] = value
    for key, value in update.document.items():
        if value is None:
            state.document.pop(key, None)
        else:
            state.document[key] = value
    for name, op in update.custom:
        customs.apply_op(state.custom, name, op, update.merge_objects)
