"""REST API key authentication and permissions (spec braze §3.1)."""

from typing import Any

import httpx

from cohortbridge.config import RateLimits, Settings
from cohortbridge.db.engine import Database
from cohortbridge.engage.app import create_app
from cohortbridge.engage.workspaces import service

BODY = {"attributes": [{"external_id": "k", "a": 1}]}


async def test_missing_and_wrong_keys_are_401(engage: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        response = await engage.post("/users/track", json=BODY, headers=headers)
        assert response.status_code == 401
        assert response.json() == {"message": "Invalid API Key"}


async def test_deprecated_api_key_in_body_or_query(
    engage: httpx.AsyncClient, workspace: dict[str, Any]
) -> None:
    key = workspace["rest_api_key"]
    response = await engage.post("/users/track", json={**BODY, "api_key": key})
    assert response.status_code == 201
    response = await engage.post("/users/track", params={"api_key": key}, json=BODY)
    assert response.status_code == 201


async def test_key_without_permission_is_403(
    engage: httpx.AsyncClient, engage_db: Database, workspace: dict[str, Any]
) -> None:
    async with engage_db.transaction() as conn:
        key = await service.create_api_key(conn, workspace["workspace_id"], ["users.export.ids"])
    headers = {"Authorization": f"Bearer {key.rest_api_key}"}
    response = await engage.post("/users/track", json=BODY, headers=headers)
    assert response.status_code == 403
    assert response.json() == {"message": "Access Denied"}
    response = await engage.post("/users/export/ids", json={"external_ids": ["k"]}, headers=headers)
    assert response.status_code == 201


async def test_keys_are_stored_hashed_and_listed_masked(
    engage_db: Database, workspace: dict[str, Any]
) -> None:
    async with engage_db.read() as conn:
        listed = await service.list_api_keys(conn, workspace["workspace_id"])
        raw = (await conn.exec_driver_sql("SELECT key_digest FROM rest_api_keys")).scalars().all()
    key = workspace["rest_api_key"]
    assert key not in raw
    assert all(key not in item.key for item in listed)
    assert listed[0].key.endswith(key[-4:])


async def test_last_seen_is_recorded(
    engage: httpx.AsyncClient, engage_db: Database, workspace: dict[str, Any], auth: dict[str, str]
) -> None:
    # A read-only endpoint marks the key as seen too.
    await engage.post("/users/export/ids", json={"external_ids": ["x"]}, headers=auth)
    async with engage_db.read() as conn:
        listed = await service.list_api_keys(conn, workspace["workspace_id"])
    assert listed[0].last_seen_at is not None


async def test_rate_limit_headers_and_429(
    engage_db: Database, workspace: dict[str, Any], auth: dict[str, str], settings: Settings
) -> None:
    limited = settings.model_copy(
        update={"rate_limits": RateLimits(users_track=2, users_track_window=3600)}
    )
    app = create_app(limited, engage_db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://e") as client:
        first = await client.post("/users/track", json=BODY, headers=auth)
        second = await client.post("/users/track", json=BODY, headers=auth)
        third = await client.post("/users/track", json=BODY, headers=auth)
    assert first.status_code == second.status_code == 201
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert first.headers["X-RateLimit-Remaining"] == "1"
    assert second.headers["X-RateLimit-Remaining"] == "0"
    assert int(first.headers["X-RateLimit-Reset"]) > 0
    assert third.status_code == 429
    assert third.json() == {"message": "Rate Limited"}
    assert third.headers["X-RateLimit-Remaining"] == "0"
