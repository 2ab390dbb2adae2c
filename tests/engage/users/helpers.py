"""Small typed helpers for the /users/* wire tests."""

from __future__ import annotations

from typing import Any

import httpx


async def track(client: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post("/users/track", json=body, headers=auth)


async def export(
    client: httpx.AsyncClient, auth: dict[str, str], **body: Any
) -> list[dict[str, Any]]:
    response = await client.post("/users/export/ids", json=body, headers=auth)
    assert response.status_code == 201, response.text
    users: list[dict[str, Any]] = response.json()["users"]
    return users


async def one(client: httpx.AsyncClient, auth: dict[str, str], external_id: str) -> dict[str, Any]:
    users = await export(client, auth, external_ids=[external_id])
    assert len(users) == 1, users
    return users[0]
