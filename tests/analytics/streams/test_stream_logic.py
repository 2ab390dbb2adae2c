"""The pure rules of event streaming: configuration, which events a stream takes, the objects
it sends and the delivery schedule (spec amplitude §4.2)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cohortbridge.analytics.cohorts.logic.definition import PropFilter
from cohortbridge.analytics.streams import logic
from cohortbridge.analytics.traits import logic as traits

T = datetime(2026, 11, 30, 12, 0, 0, 250000, tzinfo=UTC)


def stream(**config: Any) -> logic.Stream:
    return logic.stream_of("s1", "app-1", logic.parse_config(config))


def test_defaults_stream_every_event_by_external_id_with_no_properties() -> None:
    s = stream()
    assert s.event_types is None and s.send_events and not s.send_users
    body = logic.event_object(s, user_id="u1", event_type="Played", time=T,
                              event_props={"song": "x"}, user_props={"plan": "pro"})  # fmt: skip
    # No property is selected, so none is sent (spec amplitude §4.2).
    assert body == {"external_id": "u1", "app_id": "app-1", "name": "Played",
                    "time": "2026-11-30T12:00:00.250Z"}  # fmt: skip


def test_selected_properties_keep_their_native_types() -> None:
    s = stream(event_properties=["n", "ok", "tags"], user_properties=["plan", "age"])
    body = logic.event_object(
        s, user_id="u1", event_type="E", time=T,
        event_props={"n": 2.5, "ok": True, "tags": ["a"], "other": 1},
        user_props={"plan": "pro", "age": 41, "city": "x"},
    )  # fmt: skip
    assert body is not None
    assert body["properties"] == {"n": 2.5, "ok": True, "tags": ["a"], "plan": "pro", "age": 41}


def test_identifier_mappings() -> None:
    alias = stream(identifier={"type": "user_alias", "alias_label": "amplitude_id"})
    body = logic.event_object(alias, user_id="u1", event_type="E", time=T, event_props={},
                              user_props={})  # fmt: skip
    assert body is not None
    assert body["user_alias"] == {"alias_name": "u1", "alias_label": "amplitude_id"}
    # An alias-only profile is only created when the flag is explicitly false.
    assert body["_update_existing_only"] is False
    email = stream(identifier={"property": "email", "type": "email"})
    body = logic.event_object(email, user_id="u1", event_type="E", time=T, event_props={},
                              user_props={"email": "a@example.com"})  # fmt: skip
    assert body is not None and body["email"] == "a@example.com" and "external_id" not in body
    # No identifier: nothing to send (Braze needs one).
    assert logic.event_object(email, user_id="u1", event_type="E", time=T, event_props={},
                              user_props={}) is None  # fmt: skip
    assert logic.event_object(stream(), user_id=None, event_type="E", time=T, event_props={},
                              user_props={}) is None  # fmt: skip


def test_update_existing_only_is_sent_when_chosen() -> None:
    body = logic.event_object(stream(update_existing_only=True), user_id="u", event_type="E",
                              time=T, event_props={}, user_props={})  # fmt: skip
    assert body is not None and body["_update_existing_only"] is True


def test_event_types_and_where_filters() -> None:
    s = stream(event_types=["Played", "Paused"], filters=[
        {"prop": "genre", "op": "is", "values": ["rock", "jazz"]},
        {"prop": "gp:plan", "op": "is not", "values": ["free"]},
        {"prop": "seconds", "op": "greater or equal", "values": [30]},
    ])  # fmt: skip
    good = {"genre": "rock", "seconds": 31}
    assert logic.takes(s, "Played", good, {"plan": "pro"})
    assert not logic.takes(s, "Opened", good, {"plan": "pro"})  # not a selected type
    assert not logic.takes(s, "Played", {**good, "genre": "pop"}, {"plan": "pro"})
    assert not logic.takes(s, "Played", good, {"plan": "free"})  # user property filter
    assert logic.takes(s, "Played", good, {})  # "is not" holds for a missing property
    assert not logic.takes(s, "Played", {"genre": "rock", "seconds": "n/a"}, {})
    assert not logic.takes(stream(), "$identify", {}, {})  # not an event to stream


@pytest.mark.parametrize(("op", "values", "value", "expected"), [
    ("is", ["true"], True, True), ("is", ["5"], 5, True), ("is", ["5"], "5", True),
    ("contains", ["OCK"], "Rock", True), ("does not contain", ["ock"], "Rock", False),
    ("set is", ["a"], ["b", "a"], True), ("set is not", ["a"], ["b"], True),
    ("less", [3], 2, True), ("less or equal", [3], 4, False), ("greater", [3], "4", True),
    ("is", ["x"], {"nested": 1}, False),
])  # fmt: skip
def test_filter_operators(op: str, values: list[Any], value: Any, expected: bool) -> None:
    found = PropFilter("p", op, tuple(values))
    assert logic.holds(found, {"p": value}) is expected


@pytest.mark.parametrize(("config", "message"), [
    ({"event_types": []}, "at least one"),
    ({"event_types": ["_all"]}, "cannot be streamed"),
    ({"event_properties": ["$insert_id"]}, "does not take"),
    ({"user_properties": ["time"]}, "does not take"),
    ({"filters": [{"prop": "x", "op": "near", "values": [1]}]}, "filters[0]"),
    ({"identifier": {"type": "phone"}}, "identifier type"),
    ({"identifier": {"type": "user_alias"}}, "alias label"),
    ({"send_events": False}, "events, users or both"),
    ({"send_users": True}, "user_attributes"),
])  # fmt: skip
def test_invalid_configurations_say_what_is_wrong(config: dict[str, Any], message: str) -> None:
    with pytest.raises(logic.InvalidStream, match=message.replace("[", r"\[")):
        logic.parse_config(config)


def test_send_users_sends_only_changed_selected_properties() -> None:
    s = stream(send_users=True, user_attributes=["plan", "age"])
    before = {"plan": "free", "age": 40, "city": "a"}
    assert logic.user_object(s, user_id="u", before=before, after={**before, "city": "b"}) is None
    body = logic.user_object(s, user_id="u", before=before, after={"plan": "pro", "city": "a"})
    # age was unset: null removes the attribute.
    assert body == {"external_id": "u", "plan": "pro", "age": None}
    assert logic.user_object(stream(), user_id="u", before={}, after={"plan": "x"}) is None


def test_requests_hold_at_most_75_objects_per_array() -> None:
    rows = [(i, "events" if i % 3 else "attributes", {"i": i}) for i in range(1, 301)]
    packed = logic.requests(rows)
    for request in packed:
        assert all(len(array) <= logic.MAX_OBJECTS for array in request.body.values())
    seen = sorted(row_id for r in packed for row_id in r.rows.values())
    assert seen == list(range(1, 301))
    # Each position of each array names the outbox row behind it (for per-object errors).
    for request in packed:
        for (kind, index), row_id in request.rows.items():
            assert request.body[kind][index] == {"i": row_id}


def test_ten_attempts_over_four_hours_then_none() -> None:
    waited, attempts = timedelta(), 1
    moment = T
    while (when := logic.next_attempt(attempts, moment)) is not None:
        waited += when - moment
        moment, attempts = when, attempts + 1
    assert attempts == 10
    assert waited == timedelta(hours=4)


def test_immediate_retries_double_from_100_ms_with_half_jitter() -> None:
    rng = random.Random(7)
    for number, base in ((1, 0.1), (2, 0.2)):
        delays = [logic.retry_delay(number, rng) for _ in range(200)]
        assert base * 0.5 <= min(delays) and max(delays) <= base * 1.5
    assert sum((0.1 * 1.5, 0.2 * 1.5)) < logic.TRY_BUDGET_S


def test_property_sync_decisions() -> None:
    ident = logic.identifier({"type": "external_id"})
    decide = traits.decide
    first = decide(ident, "plan", amplitude_id=1, user_id="u", user_properties={}, value="pro",
                   held=None)  # fmt: skip
    assert first.planned is not None
    assert first.planned.body == {"external_id": "u", "plan": "pro",
                                  "_update_existing_only": False}  # fmt: skip
    held = (first.planned.identifier, "pro")
    assert decide(ident, "plan", amplitude_id=1, user_id="u", user_properties={}, value="pro",
                  held=held).unchanged  # fmt: skip
    # 1 and 1.0 and true are different values to Braze.
    assert decide(ident, "n", amplitude_id=1, user_id="u", user_properties={}, value=1.0,
                  held=("external_id:u", 1)).planned is not None  # fmt: skip
    gone = decide(ident, "plan", amplitude_id=1, user_id="u", user_properties={}, value=None,
                  held=held)  # fmt: skip
    assert gone.planned is not None and gone.planned.body["plan"] is None
    assert decide(ident, "plan", amplitude_id=1, user_id=None, user_properties={}, value="pro",
                  held=None).skipped  # fmt: skip
    assert decide(ident, "plan", amplitude_id=1, user_id="u", user_properties={}, value=None,
                  held=None).skipped  # fmt: skip
    with pytest.raises(traits.InvalidTraitSync, match="never real-time"):
        traits.cadence("realtime")
