"""/users/track bodies and status codes, exactly as Braze answers (spec braze §3.3–§3.4)."""

from typing import Any

import httpx
import pytest

from tests.engage.users.helpers import export, track

NO_VALID = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
REQUIRED = "'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required"
T = "2026-11-01T10:00:00Z"


async def test_partial_success_reports_errors_beside_processed(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await track(
        engage, auth, attributes=[{"external_id": "a", "x": 1}, {"first_name": "nobody"}]
    )
    assert response.status_code == 201
    assert response.json() == {
        "message": "success",
        "attributes_processed": 1,
        "errors": [{"type": REQUIRED, "input_array": "attributes", "index": 1}],
    }


async def test_nothing_valid_is_400_with_errors(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await track(engage, auth, attributes=[{"first_name": "nobody"}])
    assert response.status_code == 400
    assert response.json() == {
        "message": NO_VALID,
        "errors": [{"type": REQUIRED, "input_array": "attributes", "index": 0}],
    }


async def test_empty_arrays_are_nothing_valid(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await track(engage, auth, attributes=[], events=[], purchases=[])
    assert response.status_code == 400
    assert response.json() == {"message": NO_VALID, "errors": []}


async def test_more_than_75_objects_is_max_input_length(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    objects = [{"external_id": f"u{i}", "n": i} for i in range(76)]
    response = await track(engage, auth, attributes=objects)
    assert response.status_code == 400
    assert response.json() == {"message": "Max Input Length Exceeded"}
    assert await export(engage, auth, external_ids=["u0"]) == []


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b'"text"', b'{"attributes": {"external_id": "x"}}'],
)
async def test_malformed_bodies_are_400_bad_request(
    engage: httpx.AsyncClient, auth: dict[str, str], body: bytes
) -> None:
    headers = {**auth, "Content-Type": "application/json"}
    response = await engage.post("/users/track", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json() == {"message": "Bad Request"}


async def test_over_4_mb_is_413(engage: httpx.AsyncClient, auth: dict[str, str]) -> None:
    padding = "x" * (4 * 1024 * 1024)
    response = await track(engage, auth, attributes=[{"external_id": "big", "pad": padding}])
    assert response.status_code == 413
    assert response.json() == {"message": "Request Entity Too Large"}


@pytest.mark.parametrize(
    ("obj", "error"),
    [
        ({"external_id": "a", "braze_id": "b"}, "only one of 'external_id', 'braze_id' or "
         "'user_alias' may be provided"),
        ({"external_id": "x" * 988}, "EXTERNAL_USER_ID_TOO_LARGE"),
        ({"external_id": 5}, "'external_id' must be a string"),
        ({"user_alias": {"alias_name": "n"}}, "'user_alias' must be an object with string "
         "'alias_name' and 'alias_label'"),
        ({"email": "not-an-email"}, "The value provided for the 'email' field is not a valid email."),
        ({"external_id": "a", "email": "bad"}, "The value provided for the 'email' field is not a valid email."),
        ({"external_id": "a", "email_subscribe": "maybe"}, "BAD_EMAIL_SUBSCRIPTION_STATE"),
        ({"external_id": "a", "push_subscribe": "maybe"}, "BAD_PUSH_SUBSCRIPTION_STATE"),
        ({"external_id": "a", "current_location": {"latitude": 1}}, "BAD_LOCATION_UPDATE"),
        ({"external_id": "a", "subscription_groups": [{"subscription_group_id": "nope",
          "subscription_state": "subscribed"}]}, "BAD_SUBSCRIPTION_GROUP_ID"),
        ({"external_id": "a", "_update_existing_only": "yes"}, "'_update_existing_only' must be a boolean"),
        ({"external_id": "a", "s": "y" * 256}, "'s' is not a valid custom attribute value"),
    ],
)  # fmt: skip
async def test_invalid_attribute_objects(
    engage: httpx.AsyncClient, auth: dict[str, str], obj: dict[str, Any], error: str
) -> None:
    response = await track(engage, auth, attributes=[{"external_id": "ok"}, obj])
    assert response.status_code == 201
    assert response.json()["errors"] == [{"type": error, "input_array": "attributes", "index": 1}]


@pytest.mark.parametrize(
    ("obj", "error"),
    [
        ({"external_id": "a", "time": T}, "'name' is required"),
        ({"external_id": "a", "name": "e"}, "'time' is required"),
        ({"external_id": "a", "name": "e", "time": "yesterday"}, "'time' is not valid"),
        ({"external_id": "a", "name": "e", "time": T, "properties": {"time": 1}},
         "property 'time' is reserved"),
        ({"external_id": "a", "name": "e", "time": T, "properties": {"event_name": 1}},
         "property 'event_name' is reserved"),
        ({"external_id": "a", "name": "e", "time": T, "properties": []}, "'properties' is not valid"),
    ],
)  # fmt: skip
async def test_invalid_events(
    engage: httpx.AsyncClient, auth: dict[str, str], obj: dict[str, Any], error: str
) -> None:
    response = await track(engage, auth, events=[obj])
    assert response.status_code == 400
    assert response.json()["errors"] == [{"type": error, "input_array": "events", "index": 0}]


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"quantity": 101}, "'quantity' is not valid"),
        ({"quantity": 0}, "'quantity' is not valid"),
        ({"quantity": 1.5}, "'quantity' is not valid"),
        ({"price": "1"}, "'price' is not valid"),
        ({"currency": "DOLLARS"}, "'currency' is not valid"),
        ({"product_id": None}, "'product_id' is required"),
    ],
)
async def test_invalid_purchases(
    engage: httpx.AsyncClient, auth: dict[str, str], changes: dict[str, Any], error: str
) -> None:
    purchase = {"external_id": "a", "product_id": "p", "currency": "USD", "price": 2.0, "time": T}
    purchase.update(changes)
    purchase = {k: v for k, v in purchase.items() if v is not None}
    response = await track(engage, auth, purchases=[purchase])
    assert response.status_code == 400
    assert response.json()["errors"] == [{"type": error, "input_array": "purchases", "index": 0}]


async def test_invalid_objects_write_nothing_of_themselves(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await track(
        engage, auth,
        attributes=[{"external_id": "v", "good": 1}, {"external_id": "w", "email": "bad"}],
    )  # fmt: skip
    users = await export(engage, auth, external_ids=["v", "w"])
    assert [u["external_id"] for u in users] == ["v"]


async def test_nul_characters_are_refused_whole(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    # PostgreSQL cannot store NUL in text or JSON: the request is refused, nothing written.
    body = b'{"attributes": [{"external_id": "ok"}, {"external_id": "a\\u0000b"}]}'
    headers = {**auth, "Content-Type": "application/json"}
    response = await engage.post("/users/track", content=body, headers=headers)
    assert (response.status_code, response.json()) == (400, {"message": "Bad Request"})
    assert await export(engage, auth, external_ids=["ok"]) == []


async def test_overlong_app_id_is_an_object_error(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    event = {"external_id": "a", "name": "e", "time": T, "app_id": "x" * 65}
    response = await track(engage, auth, events=[event])
    assert response.json()["errors"] == [
        {"type": "'app_id' is not valid", "input_array": "events", "index": 0}
    ]
