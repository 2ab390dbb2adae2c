"""POST /sdk/sessions: anonymous devices, and their identification as changeUser does it."""

from __future__ import annotations

from typing import Any

import httpx

from tests.engage.users.helpers import export, one, track


async def session(
    client: httpx.AsyncClient, app_id: str, device_id: str, external_id: str | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"app_id": app_id, "device_id": device_id}
    if external_id is not None:
        body["external_id"] = external_id
    return await client.post("/sdk/sessions", json=body)


async def test_new_device_is_an_anonymous_profile(
    engage: httpx.AsyncClient, auth: dict[str, str], workspace: dict[str, Any]
) -> None:
    response = await session(engage, workspace["app_id"], "d-1")
    assert response.status_code == 201
    body = response.json()
    assert (
        body["message"] == "success" and body["external_id"] is None and len(body["braze_id"]) == 24
    )
    again = await session(engage, workspace["app_id"], "d-1")
    assert again.json()["braze_id"] == body["braze_id"]
    user = (await export(engage, auth, device_id="d-1"))[0]
    assert "external_id" not in user
    assert user["devices"] == [{"device_id": "d-1"}]


async def test_identify_new_user_keeps_the_profile(
    engage: httpx.AsyncClient, auth: dict[str, str], workspace: dict[str, Any]
) -> None:
    anonymous = (await session(engage, workspace["app_id"], "d-2")).json()
    await track(
        engage,
        auth,
        events=[
            {"braze_id": anonymous["braze_id"], "name": "browse", "time": "2026-11-01T00:00:00Z"}
        ],
    )
    identified = (await session(engage, workspace["app_id"], "d-2", "alice")).json()
    assert identified == {
        "message": "success",
        "braze_id": anonymous["braze_id"],
        "external_id": "alice",
    }
    assert (await one(engage, auth, "alice"))["custom_events"][0]["name"] == "browse"


async def test_identify_existing_user_merges_the_anonymous_profile(
    engage: httpx.AsyncClient, auth: dict[str, str], workspace: dict[str, Any]
) -> None:
    await track(engage, auth, attributes=[{"external_id": "bob", "first_name": "Bob"}])
    anonymous = (await session(engage, workspace["app_id"], "d-3")).json()
    await track(engage, auth, attributes=[{"braze_id": anonymous["braze_id"], "last_name": "Anon"}])
    result = (await session(engage, workspace["app_id"], "d-3", "bob")).json()
    bob = await one(engage, auth, "bob")
    assert result["braze_id"] == bob["braze_id"] != anonymous["braze_id"]
    assert (bob["first_name"], bob["last_name"]) == ("Bob", "Anon")
    assert {"device_id": "d-3"} in bob["devices"]
    assert await export(engage, auth, braze_id=anonymous["braze_id"]) == []


async def test_another_user_on_an_identified_device(
    engage: httpx.AsyncClient, auth: dict[str, str], workspace: dict[str, Any]
) -> None:
    await session(engage, workspace["app_id"], "d-4", "carol")
    await session(engage, workspace["app_id"], "d-4", "dave")
    assert (await export(engage, auth, device_id="d-4"))[0]["external_id"] == "dave"
    assert (await one(engage, auth, "carol"))["external_id"] == "carol"


async def test_bad_sessions(engage: httpx.AsyncClient, workspace: dict[str, Any]) -> None:
    unknown = await session(engage, "not-an-app", "d-5")
    assert (unknown.status_code, unknown.json()) == (401, {"message": "Invalid API Key"})
    no_device = await engage.post("/sdk/sessions", json={"app_id": workspace["app_id"]})
    assert (no_device.status_code, no_device.json()) == (
        400,
        {"message": "'device_id' must be a string of 1 to 255 bytes"},
    )
