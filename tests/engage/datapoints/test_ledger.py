"""Data points of /users/track (spec braze §6)."""

from typing import Any

import httpx

from cohortbridge.db.engine import Database
from cohortbridge.engage.datapoints import service

T = "2026-11-01T10:00:00Z"


async def report(engage_db: Database, workspace: dict[str, Any]) -> dict[str, Any]:
    async with engage_db.read() as conn:
        return await service.report(conn, workspace["workspace_id"])


async def test_track_counts_billable_writes(
    engage: httpx.AsyncClient, auth: dict[str, str], engage_db: Database, workspace: dict[str, Any]
) -> None:
    body = {
        "attributes": [
            {
                "external_id": "d",
                "first_name": "A",  # 1
                "email_subscribe": "opted_in",  # subscription state: free
                "tags": {"add": ["x", "y"]},  # 1 per value: 2
                "o": {"a": 1, "b": {"c": 2}},  # 1 per key: 2
                "plain": 5,  # 1
            },
            {"external_id": "d", "plain": 5},  # counted even though unchanged: 1
        ],
        "events": [{"external_id": "d", "name": "e", "time": T}] * 3,  # 3
        "purchases": [
            {"external_id": "d", "product_id": "p", "currency": "USD", "price": 1,
             "quantity": 2, "time": T},  # 2
        ],
    }  # fmt: skip
    response = await engage.post("/users/track", json=body, headers=auth)
    assert response.status_code == 201
    result = await report(engage_db, workspace)
    # Counted under the key: the bootstrap key is named "bootstrap".
    assert result["by_source"] == {"users_track:bootstrap": 1 + 2 + 2 + 1 + 1 + 3 + 2}
    assert result["days"][0]["source"] == "users_track:bootstrap"


async def test_rejected_and_skipped_objects_cost_nothing(
    engage: httpx.AsyncClient, auth: dict[str, str], engage_db: Database, workspace: dict[str, Any]
) -> None:
    await engage.post(
        "/users/track",
        json={"attributes": [{"first_name": "no id"},
                             {"external_id": "z", "a": 1, "_update_existing_only": True}]},
        headers=auth,
    )  # fmt: skip
    assert (await report(engage_db, workspace))["total"] == 0
