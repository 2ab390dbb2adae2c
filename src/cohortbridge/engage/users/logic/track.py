"""Validating a /users/track request into a plan of per-object writes (spec braze §3.3–§3.4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from cohortbridge.engage.users.logic.attributes import (
    AttributeUpdate,
    parse_push_tokens,
    parse_update,
)
from cohortbridge.engage.users.logic.identifiers import (
    InvalidObject,
    Target,
    parse_alias,
    push_import_target,
    target_of,
)
from cohortbridge.engage.users.logic.times import parse_time

ARRAYS: tuple[Literal["attributes", "events", "purchases"], ...] = (
    "attributes",
    "events",
    "purchases",
)
MAX_OBJECTS = 75
MAX_QUANTITY = 100
MAX_PROPERTIES = 256
RESERVED_PROPERTIES = frozenset({"time", "event_name"})

NO_VALID_DATA = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
MAX_INPUT = "Max Input Length Exceeded"


class TrackRejected(Exception):
    """The whole request is refused (HTTP 400)."""

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


@dataclass(slots=True)
class EventWrite:
    target: Target
    name: str
    time: datetime
    app_id: str | None
    properties: dict[str, Any] | None


@dataclass(slots=True)
class PurchaseWrite:
    target: Target
    product_id: str
    currency: str
    price: float
    quantity: int
    time: datetime
    app_id: str | None
    properties: dict[str, Any] | None


@dataclass(slots=True)
class AttributeWrite:
    target: Target
    update: AttributeUpdate
    index: int = 0


@dataclass
class TrackPlan:
    attributes: list[AttributeWrite] = field(default_factory=list)
    events: list[EventWrite] = field(default_factory=list)
    purchases: list[PurchaseWrite] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def targets(self) -> list[Target]:
        """Every addressed profile, in processing order: attributes, events, purchases."""
        return (
            [w.target for w in self.attributes]
            + [w.target for w in self.events]
            + [w.target for w in self.purchases]
        )

    def require_valid(self) -> None:
        if not (self.attributes or self.events or self.purchases):
            raise TrackRejected(NO_VALID_DATA, self.errors)

    def reject_attributes(self, rejected: dict[int, str]) -> None:
        """Drop attribute writes found invalid after parsing (``{index: error type}``)."""
        self.attributes = [w for w in self.attributes if w.index not in rejected]
        self.errors += [
            {"type": error, "input_array": "attributes", "index": index}
            for index, error in rejected.items()
        ]
        self.errors.sort(key=lambda e: (ARRAYS.index(e["input_array"]), e["index"]))
        self.require_valid()

    def response(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": "success"}
        for name in ARRAYS:
            if getattr(self, name):
                body[f"{name}_processed"] = len(getattr(self, name))
        if self.errors:
            body["errors"] = self.errors
        return body


MAX_STRING = 255  # property string values (B-EVT)


def _required_string(obj: dict[str, Any], key: str, limit: int = 255) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidObject(f"'{key}' is not valid" if key in obj else f"'{key}' is required")
    return value


def _time(obj: dict[str, Any], now: datetime) -> datetime:
    if obj.get("time") is None:
        raise InvalidObject("'time' is required")
    moment = parse_time(obj["time"])
    if moment is None:
        raise InvalidObject("'time' is not valid")
    # Future times default to the current time (B-EVT).
    return min(moment, now)


def _app_id(obj: dict[str, Any]) -> str | None:
    value = obj.get("app_id")
    if value is not None and (not isinstance(value, str) or len(value) > 64):
        raise InvalidObject("'app_id' is not valid")
    return value


def _properties(obj: dict[str, Any]) -> dict[str, Any] | None:
    props = obj.get("properties")
    if props is None:
        return None
    if not isinstance(props, dict):
        raise InvalidObject("'properties' is not valid")
    for key, value in props.items():
        if not key or len(key) > 255 or key.startswith("$"):
            raise InvalidObject(f"property '{key[:64]}' is not valid")
        if key in RESERVED_PROPERTIES:
            raise InvalidObject(f"property '{key}' is reserved")
        if isinstance(value, str) and len(value) > MAX_STRING:
            raise InvalidObject(f"property '{key[:64]}' is longer than {MAX_STRING} characters")
    # Past 256 distinct properties the rest are ignored (B-CE).
    return dict(list(props.items())[:MAX_PROPERTIES])


def parse_event(obj: dict[str, Any], now: datetime) -> EventWrite:
    target = target_of(obj)
    return EventWrite(
        target=target,
        name=_required_string(obj, "name"),
        time=_time(obj, now),
        app_id=_app_id(obj),
        properties=_properties(obj),
    )


def parse_purchase(obj: dict[str, Any], now: datetime) -> PurchaseWrite:
    target = target_of(obj)
    currency = _required_string(obj, "currency", 3)
    if len(currency) != 3 or not currency.isalpha():
        raise InvalidObject("'currency' is not valid")
    price = obj.get("price")
    if isinstance(price, bool) or not isinstance(price, int | float):
        raise InvalidObject("'price' is not valid" if "price" in obj else "'price' is required")
    quantity = obj.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidObject("'quantity' is not valid")
    if not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidObject("'quantity' is not valid")
    return PurchaseWrite(
        target=target,
        product_id=_required_string(obj, "product_id"),
        currency=currency.upper(),
        price=float(price),
        quantity=quantity,
        time=_time(obj, now),
        app_id=_app_id(obj),
        properties=_properties(obj),
    )


def parse_attributes(obj: dict[str, Any], index: int = 0) -> AttributeWrite:
    flag = obj.get("push_token_import")
    if flag is not None and not isinstance(flag, bool):
        raise InvalidObject("BAD_PUSH_TOKEN_IMPORT")
    if flag:
        return _push_token_import(obj, index)
    target = target_of(obj)
    has_primary = target.ident.kind not in ("email", "phone")
    return AttributeWrite(target, parse_update(obj, has_primary), index)


def _push_token_import(obj: dict[str, Any], index: int) -> AttributeWrite:
    tokens = parse_push_tokens(obj.get("push_tokens"))
    if not tokens:
        raise InvalidObject("BAD_PUSH_TOKEN_IMPORT")
    target = push_import_target(obj, tokens[0].device_id)
    update = parse_update({k: v for k, v in obj.items() if k != "user_alias"}, has_primary=True)
    update.push_tokens = tokens
    if obj.get("user_alias") is not None:
        update.alias = parse_alias(obj["user_alias"])
    return AttributeWrite(target, update, index)


def _parse_into(
    plan: TrackPlan, array: str, obj: dict[str, Any], now: datetime, index: int
) -> None:
    if array == "attributes":
        plan.attributes.append(parse_attributes(obj, index))
    elif array == "events":
        plan.events.append(parse_event(obj, now))
    else:
        plan.purchases.append(parse_purchase(obj, now))


def plan_track(payload: Any, now: datetime) -> TrackPlan:
    """Validate every object; raise ``TrackRejected`` when the request as a whole is bad."""
    if not isinstance(payload, dict):
        raise TrackRejected("Bad Request")
    arrays: dict[str, list[Any]] = {}
    for name in ARRAYS:
        value = payload.get(name)
        if value is None:
            continue
        if not isinstance(value, list):
            raise TrackRejected("Bad Request")
        if len(value) > MAX_OBJECTS:
            raise TrackRejected(MAX_INPUT)
        arrays[name] = value
    plan = TrackPlan()
    for array, objects in arrays.items():
        for index, obj in enumerate(objects):
            try:
                if not isinstance(obj, dict):
                    raise InvalidObject(f"'{array}' must be an array of objects")
                _parse_into(plan, array, obj, now, index)
            except InvalidObject as error:
                plan.errors.append({"type": str(error), "input_array": array, "index": index})
    plan.require_valid()
    return plan
