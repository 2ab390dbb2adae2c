"""GET /v1/userprofile with ``Authorization: Api-Key <secret key>`` (spec amplitude §5)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.analytics.test_ingest_wire import T, upload


def key(project: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Api-Key {project['secret_key']}"}


async def test_profile_with_properties(
    analytics: httpx.AsyncClient, project: dict[str, Any]
) -> None:
    await upload(analytics, project, [
        {"user_id": "profile-user", "device_id": "profile-device", "event_type": "e", "time": T,
         "platform": "iOS", "user_properties": {"plan": "pro", "n": 12, "vip": True}},
    ])  # fmt: skip
    response = await analytics.get("/v1/userprofile", headers=key(project),
                                   params={"user_id": "profile-user", "get_amp_props": "true"})  # fmt: skip
    assert response.status_code == 200
    assert response.json() == {"userData": {
        "recommendations": None, "user_id": "profile-user", "device_id": "profile-device",
        "amp_props": {"plan": "pro", "n": 12, "vip": True, "platform": "iOS",
                      "first_used": "2025-11-24", "last_used": "2025-11-24"},
        "cohort_ids": None,
    }}  # fmt: skip
    by_device = await analytics.get("/v1/userprofile", headers=key(project),
                                    params={"device_id": "profile-device"})  # fmt: skip
    assert by_device.json()["userData"]["user_id"] == "profile-user"
    assert by_device.json()["userData"]["amp_props"] is None


async def test_profile_errors(analytics: httpx.AsyncClient, project: dict[str, Any]) -> None:
    missing = await analytics.get("/v1/userprofile", params={"user_id": "x"})
    assert (missing.status_code, missing.text) == (401, "Missing Api-Key in Authorization header")
    wrong = await analytics.get("/v1/userprofile", params={"user_id": "x"},
                                headers={"Authorization": "Api-Key nope"})  # fmt: skip
    assert (wrong.status_code, wrong.text) == (401, "Invalid Api-Key")
    public = await analytics.get("/v1/userprofile", params={"user_id": "x"},
                                 headers={"Authorization": f"Api-Key {project['api_key']}"})  # fmt: skip
    assert public.status_code == 401  # the API key is not the secret key
    unknown = await analytics.get("/v1/userprofile", headers=key(project),
                                  params={"user_id": "nobody-here"})  # fmt: skip
    assert unknown.json() == {"error": "User id and device id not seen before"}
    neither = await analytics.get("/v1/userprofile", headers=key(project))
    assert neither.status_code == 400


async def test_unknown_paths_are_amplitude_shaped(analytics: httpx.AsyncClient) -> None:
    response = await analytics.post("/3/nothing", json={})
    assert (response.status_code, response.json()) == (
        404, {"code": 404, "error": "Invalid request path"})  # fmt: skip
    paths = (await analytics.get("/openapi.json")).json()["paths"]
    assert {"/2/httpapi", "/batch", "/identify", "/v1/userprofile"} <= set(paths)


async def test_a_nul_in_a_parameter_is_a_400_on_postgresql_too(
    analytics: httpx.AsyncClient, project: dict[str, Any]
) -> None:
    # SQLite looks the id up and finds nobody; PostgreSQL cannot even compare it: a 400 there,
    # never a 500.
    response = await analytics.get("/v1/userprofile", headers=key(project),
                                   params={"user_id": "nobody\x00here"})  # fmt: skip
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json() == {"code": 400, "error": "Invalid request"}
    else:
        assert response.json() == {"error": "User id and device id not seen before"}
