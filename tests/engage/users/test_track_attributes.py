"""Attribute operations through the wire, persisted and read back."""

import httpx

from tests.engage.users.helpers import one, track


async def test_standard_and_custom_attributes_round_trip(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await track(engage, auth, attributes=[{
        "external_id": "p", "first_name": "Jon", "gender": "male", "country": "us",
        "dob": "1990-02-03", "time_zone": "Europe/Paris", "email_subscribe": "opted_in",
        "current_location": {"longitude": -73.99, "latitude": 40.75},
        "tags": ["a", "b"], "score": 1.5, "vip": True, "since": "2021-01-02T03:04:05Z",
        "profile": {"pet": {"name": "Rex"}},
    }])  # fmt: skip
    user = await one(engage, auth, "p")
    assert user["first_name"] == "Jon"
    assert user["gender"] == "M"
    assert user["country"] == "US"
    assert user["dob"] == "1990-02-03"
    assert user["time_zone"] == "Europe/Paris"
    assert user["email_subscribe"] == "opted_in"
    assert user["last_coordinates"] == [-73.99, 40.75]
    assert user["custom_attributes"] == {
        "tags": ["a", "b"], "score": 1.5, "vip": True, "since": "2021-01-02T03:04:05.000Z",
        "profile": {"pet": {"name": "Rex"}},
    }  # fmt: skip


async def test_operations_apply_in_order_across_requests(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await track(engage, auth, attributes=[
        {"external_id": "q", "n": 1, "tags": ["x"], "o": {"a": 1}},
        {"external_id": "q", "n": {"inc": 4}, "tags": {"add": ["y"]}},
    ])  # fmt: skip
    await track(engage, auth, attributes=[
        {"external_id": "q", "tags": {"remove": ["x"]}, "o": {"b": 2}, "_merge_objects": True},
        {"external_id": "q", "first_name": "Q", "time_zone": "Not/AZone"},
    ])  # fmt: skip
    await track(engage, auth, attributes=[{"external_id": "q", "first_name": None, "n": None}])
    user = await one(engage, auth, "q")
    assert user["custom_attributes"] == {"tags": ["y"], "o": {"a": 1, "b": 2}}
    assert "first_name" not in user
    assert "time_zone" not in user


async def test_events_and_purchases_history(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    events = [
        {"external_id": "h", "name": "play", "time": f"2026-11-0{d}T10:00:00Z"} for d in (3, 1, 2)
    ]
    await track(engage, auth, events=events)
    await track(engage, auth, events=[
        {"external_id": "h", "name": "play", "time": "2099-01-01T00:00:00Z"},
    ], purchases=[
        {"external_id": "h", "product_id": "a", "currency": "eur", "price": 2, "time": "2026-11-01"},
        {"external_id": "h", "product_id": "a", "currency": "EUR", "price": 3, "quantity": 3,
         "time": "2026-11-05T00:00:00+02:00"},
    ])  # fmt: skip
    user = await one(engage, auth, "h")
    play = user["custom_events"][0]
    assert play["count"] == 4
    assert play["first"] == "2026-11-01T10:00:00.000Z"
    # A future time is recorded as "now".
    assert play["last"] < "2099"
    assert user["purchases"] == [
        {"name": "a", "first": "2026-11-01T00:00:00.000Z",
         "last": "2026-11-04T22:00:00.000Z", "count": 4}
    ]  # fmt: skip
    assert user["total_revenue"] == 11.0
