"""User property operations (spec amplitude §2, §6.2): pure, no I/O.

A ``user_properties`` object is either plain properties (set them) or only operations:
``$set``, ``$setOnce``, ``$add``, ``$append``, ``$prepend``, ``$unset``, ``$preInsert``,
``$postInsert``, ``$remove`` and ``$clearAll``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

OPERATIONS = ("$set", "$setOnce", "$add", "$append", "$prepend", "$unset", "$preInsert",
              "$postInsert", "$remove", "$clearAll")  # fmt: skip
KNOWN = frozenset(OPERATIONS)


def is_valid(update: dict[str, Any]) -> bool:
    """Operations and plain keys don't mix; every operation but $clearAll takes an object."""
    ops = [key for key in update if key.startswith("$")]
    if not ops:
        return True
    if len(ops) != len(update) or any(op not in KNOWN for op in ops):
        return False
    return all(isinstance(update[op], dict) for op in ops if op != "$clearAll")


def _values(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _as_list(current: Any) -> list[Any]:
    if current is None:
        return []
    return list(current) if isinstance(current, list) else [current]


def _set(props: dict[str, Any], key: str, value: Any) -> None:
    props[key] = value


def _set_once(props: dict[str, Any], key: str, value: Any) -> None:
    props.setdefault(key, value)


def _add(props: dict[str, Any], key: str, value: Any) -> None:
    current = props.get(key, 0)
    numeric = (int, float)
    if isinstance(value, bool) or not isinstance(value, numeric):
        return
    if isinstance(current, bool) or not isinstance(current, numeric):
        current = 0
    props[key] = current + value


def _append(props: dict[str, Any], key: str, value: Any) -> None:
    props[key] = _as_list(props.get(key)) + _values(value)


def _prepend(props: dict[str, Any], key: str, value: Any) -> None:
    props[key] = _values(value) + _as_list(props.get(key))


def _unset(props: dict[str, Any], key: str, _value: Any) -> None:
    props.pop(key, None)


def _post_insert(props: dict[str, Any], key: str, value: Any) -> None:
    current = _as_list(props.get(key))
    props[key] = current + [v for v in dict.fromkeys(_values(value)) if v not in current]


def _pre_insert(props: dict[str, Any], key: str, value: Any) -> None:
    current = _as_list(props.get(key))
    props[key] = [v for v in dict.fromkeys(_values(value)) if v not in current] + current


def _remove(props: dict[str, Any], key: str, value: Any) -> None:
    if key in props:
        gone = _values(value)
        props[key] = [v for v in _as_list(props[key]) if v not in gone]


APPLY: dict[str, Callable[[dict[str, Any], str, Any], None]] = {
    "$set": _set, "$setOnce": _set_once, "$add": _add, "$append": _append, "$prepend": _prepend,
    "$unset": _unset, "$preInsert": _pre_insert, "$postInsert": _post_insert, "$remove": _remove,
}  # fmt: skip


def apply(current: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """The user's properties after ``update`` (a new dict; ``current`` is left as it is)."""
    props = dict(current)
    if not any(key.startswith("$") for key in update):
        props.update(update)
        return props
    if "$clearAll" in update:
        props.clear()
    for op, changes in update.items():
        if op == "$clearAll":
            continue
        for key, value in changes.items():
            APPLY[op](props, key, value)
    return props
