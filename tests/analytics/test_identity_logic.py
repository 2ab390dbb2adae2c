"""Amplitude ID assignment rules and user property operations: pure rules, no database."""

from __future__ import annotations

from typing import Any

import pytest

from cohortbridge.analytics.identity import properties
from cohortbridge.analytics.identity.logic import Known, Resolver


def test_rule_1_a_new_device_is_a_new_user() -> None:
    resolver = Resolver(Known())
    first = resolver.resolve(None, "dev-1")
    assert resolver.resolve(None, "dev-1") == first
    assert resolver.created == {first: None}


def test_rule_2_the_first_login_on_a_device_takes_its_history() -> None:
    resolver = Resolver(Known(user_of={7: None}, device_owner={"dev-1": 7}))
    assert resolver.resolve("alice", "dev-1") == 7
    assert resolver.identified == {7: "alice"}
    assert resolver.created == {}


def test_rule_3_a_known_user_keeps_their_id_on_any_device() -> None:
    resolver = Resolver(Known(by_user={"alice": 3}, user_of={3: "alice"}))
    assert resolver.resolve("alice", "dev-new") == 3
    assert resolver.devices == {"dev-new": 3}


def test_rule_4_anonymous_events_go_to_the_last_user_and_other_users_are_their_own() -> None:
    resolver = Resolver(Known(by_user={"alice": 3}, user_of={3: "alice"},
                              device_owner={"dev-1": 3}))  # fmt: skip
    assert resolver.resolve(None, "dev-1") == 3
    bob = resolver.resolve("bob", "dev-1")
    assert bob < 0
    assert resolver.created == {bob: "bob"}
    assert resolver.resolve(None, "dev-1") == bob


def test_rule_5_an_anonymous_user_merges_into_the_user_who_logs_in() -> None:
    resolver = Resolver(Known(by_user={"david": 8}, user_of={8: "david", 9: None},
                              device_owner={"dev-z": 9}))  # fmt: skip
    assert resolver.resolve("david", "dev-z") == 8
    assert resolver.merged == {9: 8}
    assert resolver.final(9) == 8
    assert resolver.resolve(None, "dev-z") == 8


def test_user_ids_are_never_merged() -> None:
    resolver = Resolver(Known(by_user={"a": 1, "b": 2}, user_of={1: "a", 2: "b"},
                              device_owner={"dev": 1}))  # fmt: skip
    assert resolver.resolve("b", "dev") == 2
    assert resolver.merged == {}


def test_a_batch_merges_its_own_new_anonymous_user() -> None:
    resolver = Resolver(Known(by_user={"carol": 4}, user_of={4: "carol"}))
    anonymous = resolver.resolve(None, "dev-c")
    assert resolver.resolve("carol", "dev-c") == 4
    assert resolver.final(anonymous) == 4


@pytest.mark.parametrize(("current", "update", "expected"), [
    ({"a": 1}, {"b": 2}, {"a": 1, "b": 2}),
    ({"a": 1}, {"$set": {"a": 2}, "$setOnce": {"a": 3, "c": 4}}, {"a": 2, "c": 4}),
    ({"n": 1}, {"$add": {"n": 2.5, "m": 3, "bad": "x"}}, {"n": 3.5, "m": 3}),
    ({"l": "x"}, {"$append": {"l": ["y", "z"], "new": 1}}, {"l": ["x", "y", "z"], "new": [1]}),
    ({"l": [1]}, {"$prepend": {"l": 0}}, {"l": [0, 1]}),
    ({"l": [1, 2]}, {"$postInsert": {"l": [2, 3]}, "$preInsert": {"m": [1, 1]}},
     {"l": [1, 2, 3], "m": [1]}),
    ({"l": [1, 2, 1, 3]}, {"$remove": {"l": 1, "missing": 2}}, {"l": [2, 3]}),
    ({"a": 1, "b": 2}, {"$unset": {"a": "-"}}, {"b": 2}),
    ({"a": 1}, {"$clearAll": "-", "$set": {"b": 1}}, {"b": 1}),
])  # fmt: skip
def test_user_property_operations(
    current: dict[str, Any], update: dict[str, Any], expected: dict[str, Any]
) -> None:
    before = dict(current)
    assert properties.is_valid(update)
    assert properties.apply(current, update) == expected
    assert current == before  # the input is left as it was


def test_operations_and_plain_keys_do_not_mix() -> None:
    assert not properties.is_valid({"$append": {"interests": "Music"}, "subscription": "paid"})
    assert not properties.is_valid({"$set": "x"})
    assert not properties.is_valid({"$bogus": {}})
