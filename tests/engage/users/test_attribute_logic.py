"""Custom attribute operations as pure rules (B-ATTR, B-CA, B-NCA, B-AOO)."""

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cohortbridge.engage.users.logic import customs
from cohortbridge.engage.users.logic.identifiers import InvalidObject


def apply(current: dict[str, Any], name: str, value: Any, merge: bool = False) -> dict[str, Any]:
    state = dict(current)
    customs.apply_op(state, name, customs.parse_op(name, value), merge)
    return state


def test_set_and_null_deletes() -> None:
    assert apply({}, "a", "x") == {"a": "x"}
    assert apply({"a": "x"}, "a", None) == {}


def test_increment_from_missing_and_existing() -> None:
    assert apply({}, "n", {"inc": 2}) == {"n": 2}
    assert apply({"n": 5}, "n", {"inc": -7}) == {"n": -2}


def test_array_set_is_unique_and_capped_fifo() -> None:
    assert apply({}, "a", ["hotdog", "hotdog", "hotdog", "pizza"]) == {"a": ["hotdog", "pizza"]}
    values = [f"v{i}" for i in range(30)]
    assert apply({}, "a", values)["a"] == values[-25:]


def test_array_add_moves_existing_to_end_and_remove() -> None:
    state = apply({"a": ["x", "y", "z"]}, "a", {"add": ["x", "w"], "remove": ["y"]})
    assert state == {"a": ["z", "x", "w"]}


def test_array_add_drops_oldest_when_full() -> None:
    full = [f"v{i}" for i in range(25)]
    assert apply({"a": full}, "a", {"add": ["new"]})["a"] == [*full[1:], "new"]


def test_date_like_strings_become_times() -> None:
    assert apply({}, "d", "2021-12-01") == {"d": {"$time": "2021-12-01T00:00:00.000Z"}}
    assert apply({}, "d", "12/1/2021") == {"d": {"$time": "2021-12-01T00:00:00.000Z"}}
    assert apply({}, "d", "not a date") == {"d": "not a date"}


def test_nested_object_replaces_unless_merge() -> None:
    current = {"o": {"a": 1, "b": {"c": 2}}}
    assert apply(current, "o", {"b": {"d": 3}}) == {"o": {"b": {"d": 3}}}
    merged = apply(current, "o", {"b": {"d": 3}}, merge=True)
    assert merged == {"o": {"a": 1, "b": {"c": 2, "d": 3}}}


def test_nested_time_and_invalid_nested_values() -> None:
    state = apply({}, "o", {"when": {"$time": "2020-05-28"}})
    assert state == {"o": {"when": {"$time": "2020-05-28T00:00:00.000Z"}}}
    for bad in ({"when": {"$time": "nope"}}, {"bad key": 1}, {"a.b": 1}, {"x": None}):
        with pytest.raises(InvalidObject):
            customs.parse_op("o", bad)


def test_array_of_objects_add_remove_update_order() -> None:
    pets = [{"id": 1, "type": "dog"}, {"id": 2, "type": "cat"}]
    state = apply({}, "pets", pets)
    assert state == {"pets": pets}
    change = {
        "$add": [{"id": 3, "type": "dog"}],
        "$remove": [{"$identifier_key": "type", "$identifier_value": "dog"}],
        "$update": [{"$identifier_key": "id", "$identifier_value": 2,
                     "$new_object": {"name": "Tom"}}],
    }  # fmt: skip
    # Add, then remove (removes both dogs, the new one too), then update.
    assert apply(state, "pets", change, merge=True) == {
        "pets": [{"id": 2, "type": "cat", "name": "Tom"}]
    }
    # $update needs _merge_objects.
    assert apply(state, "pets", {"$update": change["$update"]})["pets"] == pets


def test_datapoints_per_operation() -> None:
    assert customs.datapoints(customs.parse_op("a", ["x", "y"])) == 1
    assert customs.datapoints(customs.parse_op("a", {"add": ["x", "y", "z"]})) == 3
    assert customs.datapoints(customs.parse_op("o", {"a": 1, "b": {"c": 2, "d": 3}})) == 3
    pets = [{"id": 1, "type": "dog"}, {"id": 2, "type": "cat"}]
    assert customs.datapoints(customs.parse_op("pets", pets)) == 4


def test_invalid_names() -> None:
    for name in ("", "$x", "n" * 256):
        with pytest.raises(InvalidObject):
            customs.parse_op(name, 1)


scalars = st.one_of(st.integers(-1000, 1000), st.text(max_size=10), st.booleans())


@given(
    st.lists(scalars, max_size=40), st.lists(scalars, max_size=10), st.lists(scalars, max_size=10)
)
def test_array_change_invariants(start: list[Any], add: list[Any], remove: list[Any]) -> None:
    state = apply({}, "a", start)
    state = apply(state, "a", {"add": add, "remove": remove})
    result = state["a"]
    keys = [(type(v), repr(v)) for v in result]
    assert len(result) <= customs.MAX_ARRAY
    assert len(keys) == len(set(keys))
    assert not {(type(v), repr(v)) for v in remove} & set(keys)
    # Values added and not removed end the array, ordered by their last addition.
    removed = {(type(v), repr(v)) for v in remove}
    last_first = dict.fromkeys((type(v), repr(v)) for v in reversed(add))
    survivors = [k for k in reversed(list(last_first)) if k not in removed]
    if survivors:
        tail = [k for k in keys if k in set(survivors)]
        assert tail == survivors[-len(tail) :]
