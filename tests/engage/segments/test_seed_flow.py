"""The seed flow of the integration, end to end on engage (issue 4, point 5):
profiles via /users/track → a cohort via the partner API → a segment "Amplitude Cohorts
includes <cohort>" → its size and its export are exactly the matched members, and both follow
removals through the partner API."""

from __future__ import annotations

from typing import Any

import httpx

from cohortbridge.db.engine import Database
from cohortbridge.engage.partners import service as partners
from tests.engage.segments.conftest import CallbackReceiver, download
from tests.engage.users.helpers import track


async def _partner_keys(engage_db: Database, workspace_id: str) -> dict[str, str]:
    async with engage_db.transaction() as conn:
        partner = await partners.create_partner_key(conn, "amplitude")
        secret = await partners.create_import_key(conn, workspace_id, "amplitude", "x")
    return {"partner_api_key": partner.partner_api_key, "client_secret": secret.data_import_key}


async def _size(engage: httpx.AsyncClient, auth: dict[str, str], segment_id: str) -> int:
    response = await engage.get("/segments/size", params={"segment_id": segment_id}, headers=auth)
    assert response.status_code == 200, response.text
    size: int = response.json()["size"]
    return size


async def _exported(
    engage: httpx.AsyncClient, auth: dict[str, str], segment_id: str, receiver: CallbackReceiver
) -> list[dict[str, Any]]:
    before = len(receiver.bodies)
    response = await engage.post("/users/export/segment", json={
        "segment_id": segment_id, "fields_to_export": ["external_id", "devices"],
        "callback_endpoint": receiver.url,
    }, headers=auth)  # fmt: skip
    assert response.status_code == 201, response.text
    bodies = await receiver.wait(before + 1)
    assert bodies[-1] == {"success": True, "url": response.json()["url"]}
    return await download(engage, response.json()["url"])


def _who(users: list[dict[str, Any]]) -> set[str]:
    # Identified users by external id, anonymous ones by their device.
    return {u.get("external_id") or u["devices"][0]["device_id"] for u in users}


async def test_seed_flow(
    engage: httpx.AsyncClient, auth: dict[str, str], engage_db: Database,
    workspace: dict[str, Any], receiver: CallbackReceiver,
) -> None:  # fmt: skip
    # 1. Profiles: five identified users and one anonymous device.
    tracked = await track(engage, auth, attributes=[
        *({"external_id": f"user-{i}", "plan": "pro"} for i in range(5)),
        {"push_token_import": True, "push_tokens": [
            {"app_id": workspace["app_id"], "token": "tok", "device_id": "dev-anon"}]},
    ])  # fmt: skip
    assert tracked.status_code == 201, tracked.text
    # 2. A cohort through the partner API, as Amplitude sends it (unknown ids are ignored).
    keys = await _partner_keys(engage_db, workspace["workspace_id"])
    named = await engage.post("/partners/amplitude/cohorts", json={
        **keys, "cohort_id": "pwr", "name": "Power users", "created_at": "2026-11-01T00:00:00Z",
    })  # fmt: skip
    assert named.status_code == 201
    added = await engage.post("/partners/amplitude/cohorts/users", json={
        **keys, "cohort_id": "pwr", "cohort_changes": [
            {"user_ids": ["user-0", "user-1", "user-2", "ghost"], "device_ids": ["dev-anon"]}],
    })  # fmt: skip
    assert added.json()["matched"] == 4
    assert added.json()["unmatched"] == 1
    # 3. A segment on the cohort.
    created = await engage.post("/segments/create", json={
        "name": "Power users", "filter": {"amplitude_cohorts": {"comparison": "includes_value",
                                                                "value": "pwr"}},
    }, headers=auth)  # fmt: skip
    segment_id = created.json()["segment_id"]
    # 4. Its size and export are exactly the matched members.
    members = {"user-0", "user-1", "user-2", "dev-anon"}
    assert await _size(engage, auth, segment_id) == len(members)
    assert _who(await _exported(engage, auth, segment_id, receiver)) == members
    details = await engage.get("/segments/details", params={"segment_id": segment_id},
                               headers=auth)  # fmt: skip
    assert details.json()["description"] == (
        'Amplitude Cohorts includes "[Amplitude] Power users: pwr"'
    )
    # 5. Removals through the partner API: size and export follow.
    removed = await engage.post("/partners/amplitude/cohorts/users", json={
        **keys, "cohort_id": "pwr", "cohort_changes": [
            {"user_ids": ["user-1"], "device_ids": ["dev-anon"], "should_remove": True}],
    })  # fmt: skip
    assert removed.json()["users_removed"] == 2
    assert await _size(engage, auth, segment_id) == 2
    assert _who(await _exported(engage, auth, segment_id, receiver)) == {"user-0", "user-2"}
