"""Who an object in /users/track (and friends) is about (spec braze §3.3, §4)."""

from __future__ import annotations

import re
from typing import Any, Literal, NamedTuple

IdentKind = Literal["external_id", "user_alias", "braze_id", "email", "phone", "device_id"]

MAX_EXTERNAL_ID_BYTES = 987
PRIMARY: tuple[IdentKind, ...] = ("external_id", "user_alias", "braze_id")

REQUIRED = "'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required"
ONE_PRIMARY = "only one of 'external_id', 'braze_id' or 'user_alias' may be provided"  # [INFER]
EXTERNAL_ID_TOO_LARGE = "EXTERNAL_USER_ID_TOO_LARGE"
EXTERNAL_ID_NOT_STRING = "'external_id' must be a string"
BRAZE_ID_NOT_STRING = "'braze_id' must be a string"
ALIAS_INVALID = "'user_alias' must be an object with string 'alias_name' and 'alias_label'"
EMAIL_INVALID = "The value provided for the 'email' field is not a valid email."
PHONE_INVALID = "The value provided for the 'phone' field is not a valid phone number."
UPDATE_ONLY_INVALID = "'_update_existing_only' must be a boolean"

# Deliberately loose: one @, something on both sides, a dot in the domain, no spaces.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ().\-]{3,32}$")


class InvalidObject(ValueError):
    """The object cannot be processed; the message is its Braze error ``type``."""


Alias = tuple[str, str]  # (alias_label, alias_name)


# Identifiers and targets are named tuples: a request makes two of each per object, and a
# tuple is made in half the time of a frozen dataclass.
class Ident(NamedTuple):
    kind: IdentKind
    value: str | Alias

    def key(self) -> tuple[str, str | Alias]:
        return self


class Target(NamedTuple):
    """The profile an object addresses and whether it may be created when missing."""

    ident: Ident
    create: bool
    # A push-token import whose device is already known is ignored (B-ATTR).
    only_new: bool = False


def valid_email(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 255 and bool(_EMAIL.match(value))


def valid_phone(value: object) -> bool:
    return isinstance(value, str) and bool(_PHONE.match(value))


def parse_alias(value: object) -> Alias:
    if not isinstance(value, dict):
        raise InvalidObject(ALIAS_INVALID)
    label, name = value.get("alias_label"), value.get("alias_name")
    if not (isinstance(label, str) and isinstance(name, str) and label and name):
        raise InvalidObject(ALIAS_INVALID)
    if len(label) > 255 or len(name) > 255:
        raise InvalidObject(ALIAS_INVALID)
    return (label, name)


def check_external_id(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidObject(EXTERNAL_ID_NOT_STRING)
    if len(value.encode("utf-8")) > MAX_EXTERNAL_ID_BYTES:
        raise InvalidObject(EXTERNAL_ID_TOO_LARGE)
    return value


def _primary(obj: dict[str, Any]) -> Ident | None:
    present = [kind for kind in PRIMARY if obj.get(kind) is not None]
    if len(present) > 1:
        raise InvalidObject(ONE_PRIMARY)
    if not present:
        return None
    kind = present[0]
    if kind == "external_id":
        return Ident(kind, check_external_id(obj[kind]))
    if kind == "braze_id":
        if not isinstance(obj[kind], str):
            raise InvalidObject(BRAZE_ID_NOT_STRING)
        return Ident(kind, obj[kind])
    return Ident(kind, parse_alias(obj[kind]))


def _secondary(obj: dict[str, Any]) -> Ident | None:
    # With no primary id, email wins over phone (spec braze §3.3).
    if obj.get("email") is not None:
        if not valid_email(obj["email"]):
            raise InvalidObject(EMAIL_INVALID)
        return Ident("email", obj["email"])
    if obj.get("phone") is not None:
        if not valid_phone(obj["phone"]):
            raise InvalidObject(PHONE_INVALID)
        return Ident("phone", obj["phone"])
    return None


def push_import_target(obj: dict[str, Any], device_id: str) -> Target:
    """A push-token import creates an anonymous profile holding the token's device (B-ATTR).

    It may carry an alias, which is attached to that profile, but never external_id/braze_id.
    """
    if obj.get("external_id") is not None or obj.get("braze_id") is not None:
        raise InvalidObject("BAD_PUSH_TOKEN_IMPORT")
    return Target(Ident("device_id", device_id), create=True, only_new=True)


def target_of(obj: dict[str, Any]) -> Target:
    """The lookup identifier of a /users/track object and its creation rule.

    ``_update_existing_only`` defaults to false for external ids, email and phone and to true for
    aliases (an alias-only profile is created only when it is explicitly false; spec braze §10.8).
    A ``braze_id`` is assigned by us, so an unknown one never creates a profile.
    """
    flag = obj.get("_update_existing_only")
    if flag is not None and not isinstance(flag, bool):
        raise InvalidObject(UPDATE_ONLY_INVALID)
    ident = _primary(obj) or _secondary(obj)
    if ident is None:
        raise InvalidObject(REQUIRED)
    if ident.kind == "braze_id":
        return Target(ident, create=False)
    if ident.kind == "user_alias":
        return Target(ident, create=flag is False)
    return Target(ident, create=flag is not True)
