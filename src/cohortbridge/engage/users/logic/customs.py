"""Custom attribute values and their operations (spec braze §3.3.1, B-CA, B-NCA, B-AOO).

Stored form, inside the profile's ``custom_attributes`` document:
string, number, boolean, array of scalars, nested object, array of objects, and times as
``{"$time": "2020-05-28T00:00:00.000Z"}`` (Braze's own notation for times in nested objects),
so every stored value says its type.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from cohortbridge.engage.users.logic.identifiers import InvalidObject
from cohortbridge.engage.users.logic.times import (
    format_time,
    in_storable_range,
    looks_like_date,
    parse_time,
)

MAX_STRING = 255
MAX_ARRAY = 25  # Braze's default per-attribute array length (configurable to 100 there)
MAX_NESTED_BYTES = 100 * 1024
TIME_KEY = "$time"


# The operations (and the writes of logic/track.py) are plain slotted dataclasses, not frozen
# ones: a request makes hundreds, and a frozen dataclass takes three times as long to make.
@dataclass(slots=True)
class SetValue:
    value: Any


@dataclass(slots=True)
class Unset:
    pass


@dataclass(slots=True)
class Increment:
    by: int | float


@dataclass(slots=True)
class ArrayChange:
    add: list[Any] = field(default_factory=list)
    remove: list[Any] = field(default_factory=list)


@dataclass(slots=True)
class SetObject:
    value: dict[str, Any]


@dataclass(slots=True)
class ObjectArrayChange:
    add: list[dict[str, Any]] = field(default_factory=list)
    remove: list[tuple[str, Any]] = field(default_factory=list)
    update: list[tuple[str, Any, dict[str, Any]]] = field(default_factory=list)


CustomOp = SetValue | Unset | Increment | ArrayChange | SetObject | ObjectArrayChange


def invalid(name: str) -> InvalidObject:
    return InvalidObject(f"'{name}' is not a valid custom attribute value")


def check_name(name: str) -> None:
    if not name or len(name) > MAX_STRING or name.startswith("$"):
        raise InvalidObject(f"'{name[:64]}' is not a valid custom attribute name")


def time_value(moment: Any) -> dict[str, str]:
    return {TIME_KEY: format_time(moment)}


def is_time(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and TIME_KEY in value


def scalar(name: str, value: Any) -> Any:
    """A scalar as stored: strings that look like dates become times (B-CA)."""
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise invalid(name)
        if looks_like_date(value):
            moment = parse_time(value)
            if moment is not None and in_storable_range(moment):
                return time_value(moment)
        return value
    raise invalid(name)


def nested(name: str, value: Any, depth: int = 0) -> Any:
    """A nested object's content as stored; ``{"$time": …}`` is checked and normalised."""
    if depth > 50:
        raise invalid(name)
    if isinstance(value, dict):
        if TIME_KEY in value:
            moment = parse_time(value.get(TIME_KEY)) if len(value) == 1 else None
            if moment is None or not in_storable_range(moment):
                raise invalid(name)
            return time_value(moment)
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not key or len(key) > MAX_STRING or " " in key or "." in key or "$" in key:
                raise invalid(name)
            if item is None:
                raise invalid(name)
            out[key] = nested(name, item, depth + 1)
        return out
    if isinstance(value, list):
        return [nested(name, item, depth + 1) for item in value]
    if isinstance(value, str) and len(value) > MAX_STRING:
        raise invalid(name)
    if isinstance(value, bool | int | float | str):
        return value
    raise invalid(name)


def _identifier(name: str, spec: Any) -> tuple[str, Any]:
    if not isinstance(spec, dict) or not isinstance(spec.get("$identifier_key"), str):
        raise invalid(name)
    return spec["$identifier_key"], spec.get("$identifier_value")


def _object_array_change(name: str, value: dict[str, Any]) -> ObjectArrayChange:
    adds = value.get("$add", [])
    removes = value.get("$remove", [])
    updates = value.get("$update", [])
    if not all(isinstance(x, list) for x in (adds, removes, updates)):
        raise invalid(name)
    if not all(isinstance(item, dict) for item in adds):
        raise invalid(name)
    update_ops = []
    for spec in updates:
        key, ident = _identifier(name, spec)
        new_object = spec.get("$new_object")
        if not isinstance(new_object, dict):
            raise invalid(name)
        update_ops.append((key, ident, nested(name, new_object)))
    return ObjectArrayChange(
        add=[nested(name, item) for item in adds],
        remove=[_identifier(name, spec) for spec in removes],
        update=update_ops,
    )


def parse_op(name: str, value: Any) -> CustomOp:
    """One custom attribute write of an attributes object, validated."""
    check_name(name)
    kind = type(value)
    if kind is int or kind is float or kind is bool or kind is str:
        # The common case first (most writes set a scalar).
        return SetValue(scalar(name, value))
    if value is None:
        return Unset()
    if isinstance(value, list):
        if value and all(isinstance(item, dict) for item in value):
            return SetValue([nested(name, item) for item in value])
        return SetValue(_unique([scalar(name, item) for item in value])[-MAX_ARRAY:])
    if not isinstance(value, dict):
        return SetValue(scalar(name, value))
    if set(value) <= {"inc"} and value:
        by = value["inc"]
        if isinstance(by, bool) or not isinstance(by, int | float):
            raise invalid(name)
        return Increment(by)
    if value and set(value) <= {"add", "remove"}:
        adds, removes = value.get("add", []), value.get("remove", [])
        if not isinstance(adds, list) or not isinstance(removes, list):
            raise invalid(name)
        return ArrayChange([scalar(name, x) for x in adds], [scalar(name, x) for x in removes])
    if value and set(value) <= {"$add", "$remove", "$update"}:
        return _object_array_change(name, value)
    stored = nested(name, value)
    if len(str(stored)) > MAX_NESTED_BYTES:
        raise invalid(name)
    return SetValue(stored) if is_time(stored) else SetObject(stored)


def _same(value: Any) -> tuple[str, str]:
    """Equality for array members that tells ``1`` from ``True`` and ``1.0`` from ``"1"``."""
    return (type(value).__name__, repr(value))


def _unique(values: list[Any]) -> list[Any]:
    seen: set[tuple[str, str]] = set()
    out: list[Any] = []
    for value in values:
        if _same(value) not in seen:
            seen.add(_same(value))
            out.append(value)
    return out


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        current = out.get(key)
        if isinstance(value, dict) and isinstance(current, dict) and not is_time(value):
            out[key] = deep_merge(current, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_op(custom: dict[str, Any], name: str, op: CustomOp, merge_objects: bool) -> None:
    """Apply one operation to a profile's custom attributes, in place."""
    current = custom.get(name)
    if isinstance(op, Unset):
        custom.pop(name, None)
    elif isinstance(op, SetValue):
        custom[name] = op.value
    elif isinstance(op, Increment):
        base = current if isinstance(current, int | float) and not isinstance(current, bool) else 0
        custom[name] = base + op.by
    elif isinstance(op, ArrayChange):
        custom[name] = _array_change(current, op)
    elif isinstance(op, SetObject):
        if merge_objects and isinstance(current, dict) and not is_time(current):
            custom[name] = deep_merge(current, op.value)
        else:
            custom[name] = op.value
    else:
        custom[name] = _object_array(current, op, merge_objects)


def _array_change(current: Any, op: ArrayChange) -> list[Any]:
    values = _unique(list(current)) if isinstance(current, list) else []
    for value in op.add:
        # An existing value moves to the end (B-CA).
        values = [v for v in values if _same(v) != _same(value)]
        values.append(value)
    removed = {_same(value) for value in op.remove}
    return [v for v in values if _same(v) not in removed][-MAX_ARRAY:]


def _object_array(current: Any, op: ObjectArrayChange, merge_objects: bool) -> list[Any]:
    # Add, then remove, then update (braze-inc/braze-docs#11289).
    items = (
        [item for item in current if isinstance(item, dict)] if isinstance(current, list) else []
    )
    items += copy.deepcopy(op.add)
    for key, ident in op.remove:
        items = [item for item in items if item.get(key) != ident]
    if merge_objects:
        for key, ident, new_object in op.update:
            items = [
                deep_merge(item, new_object) if item.get(key) == ident else item for item in items
            ]
    return items


def count_leaves(value: Any) -> int:
    if isinstance(value, dict) and not is_time(value):
        return sum(count_leaves(item) for item in value.values()) or 1
    return 1


def datapoints(op: CustomOp) -> int:
    """Data points of one write (spec braze §6)."""
    if type(op) is SetValue and not isinstance(op.value, list):
        return 1
    if isinstance(op, ArrayChange):
        return max(len(op.add) + len(op.remove), 1)
    if isinstance(op, SetObject):
        return count_leaves(op.value)
    if isinstance(op, ObjectArrayChange):
        added = sum(len(item) for item in op.add)
        updated = sum(len(new) for _key, _ident, new in op.update)
        return max(added + updated + len(op.remove), 1)
    if isinstance(op, SetValue) and _is_object_array(op.value):
        return max(sum(len(item) for item in op.value), 1)
    return 1


def _is_object_array(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, dict) and not is_time(item) for item in value)
    )
