"""POST /users/export/segment (spec braze §5.6) and the download of its file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cohortbridge.config import Settings
from cohortbridge.db.engine import Database
from cohortbridge.engage.app import create_app
from cohortbridge.engage.segments.repository import exports as export_repo
from cohortbridge.engage.workspaces import service as workspaces
from tests.engage.segments.conftest import CallbackReceiver, download
from tests.engage.segments.helpers import attribute
from tests.engage.segments.test_segments_api import create
from tests.engage.users.helpers import track

EVERYONE = {"random_bucket": {"comparison": "greater_than_or_equal_to", "value": 0}}


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def start(
    engage: httpx.AsyncClient, auth: dict[str, str], segment_id: str, **body: Any
) -> httpx.Response:
    payload = {"segment_id": segment_id, "fields_to_export": ["external_id"], **body}
    return await engage.post("/users/export/segment", json=payload, headers=auth)


async def test_export_writes_every_member_and_calls_back(
    engage: httpx.AsyncClient, auth: dict[str, str], receiver: CallbackReceiver
) -> None:
    users = [{"external_id": f"u{i:05d}", "eye": "blue" if i % 3 else "grey"} for i in range(75)]
    for _ in range(2):
        assert (await track(engage, auth, attributes=users)).status_code == 201
    await track(engage, auth, attributes=[{"external_id": f"v{i}", "eye": "blue"}
                                          for i in range(75)])  # fmt: skip
    segment_id = await create(engage, auth, filter=attribute("eye", "equals", "blue"))
    response = await start(engage, auth, segment_id, callback_endpoint=receiver.url)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"message", "object_prefix", "url"}
    assert body["url"] == f"http://127.0.0.1:8400/exports/segments/{body['object_prefix']}.zip"
    assert await receiver.wait() == [{"success": True, "url": body["url"]}]
    exported = await download(engage, body["url"])
    expected = sorted([u["external_id"] for u in users if u["eye"] == "blue"]
                      + [f"v{i}" for i in range(75)])  # fmt: skip
    assert sorted(u["external_id"] for u in exported) == expected
    assert all(set(u) == {"external_id"} for u in exported)


async def test_fields_custom_attributes_and_90_days_of_history(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    now = datetime.now(UTC)
    await track(engage, auth, attributes=[
        {"external_id": "a", "eye": "blue", "plan": "pro", "email": "a@example.com"},
    ], events=[
        {"external_id": "a", "name": "old", "time": iso(now - timedelta(days=100))},
        {"external_id": "a", "name": "new", "time": iso(now - timedelta(days=100))},
        {"external_id": "a", "name": "new", "time": iso(now - timedelta(days=1))},
    ])  # fmt: skip
    segment_id = await create(engage, auth, filter=EVERYONE)
    response = await start(engage, auth, segment_id, fields_to_export=[
        "external_id", "email", "custom_events"], custom_attributes_to_export=["plan"])  # fmt: skip
    (user,) = await download(engage, response.json()["url"])
    assert user["email"] == "a@example.com"
    assert user["custom_attributes"] == {"plan": "pro"}
    # Entries seen in the last 90 days; their first time and count stay all-time.
    assert [(e["name"], e["count"]) for e in user["custom_events"]] == [("new", 2)]
    everything = await start(engage, auth, segment_id, fields_to_export=["custom_attributes"],
                             custom_attributes_to_export=["plan"])  # fmt: skip
    (whole,) = await download(engage, everything.json()["url"])
    assert whole == {"custom_attributes": {"eye": "blue", "plan": "pro"}}


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"fields_to_export": None}, 400,
     "'fields_to_export' is required: name the user fields to export"),
    ({"fields_to_export": ["shoe"]}, 400, "Invalid fields in 'fields_to_export': shoe"),
    ({"output_format": "gzip"}, 400,
     "output_format 'gzip' needs an S3 bucket of your own; use 'zip'"),
    ({"callback_endpoint": "ftp://x"}, 400, "'callback_endpoint' must be an http(s) URL"),
    ({"custom_attributes_to_export": ["a"] * 501}, 400,
     "'custom_attributes_to_export' holds at most 500 names"),
    ({"segment_id": "nope"}, 404, "Segment not found"),
])  # fmt: skip
async def test_bad_export_requests(
    engage: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any], status: int,
    message: str,
) -> None:  # fmt: skip
    segment_id = await create(engage, auth, filter=EVERYONE)
    payload = {"segment_id": segment_id, "fields_to_export": ["external_id"], **body}
    payload = {k: v for k, v in payload.items() if v is not None}
    if body.get("custom_attributes_to_export"):
        payload["custom_attributes_to_export"] = [f"a{i}" for i in range(501)]
    response = await engage.post("/users/export/segment", json=payload, headers=auth)
    assert (response.status_code, response.json()) == (status, {"message": message})


async def _claim_running(engage_db: Database, workspace_id: str, segment_id: str,
                         heartbeat: datetime) -> None:  # fmt: skip
    async with engage_db.transaction() as conn:
        assert await export_repo.claim(conn, {
            "id": "00000000-0000-0000-0000-000000000001", "workspace_id": workspace_id,
            "segment_id": segment_id, "object_prefix": "running", "status": "running",
            "running_segment": segment_id, "fields": ["external_id"], "started_at": heartbeat,
            "heartbeat_at": heartbeat,
        })  # fmt: skip


async def test_one_running_export_per_segment(
    engage: httpx.AsyncClient, auth: dict[str, str], engage_db: Database,
    workspace: dict[str, Any],
) -> None:  # fmt: skip
    segment_id = await create(engage, auth, filter=EVERYONE)
    other = await create(engage, auth, "other", filter=EVERYONE)
    await _claim_running(engage_db, workspace["workspace_id"], segment_id, datetime.now(UTC))
    busy = await start(engage, auth, segment_id)
    assert busy.status_code == 429
    assert busy.json() == {"message": "An export of this segment is already running; retry "
                                      "when it has finished"}  # fmt: skip
    # Another segment's export is not held up.
    elsewhere = await start(engage, auth, other)
    assert elsewhere.status_code == 201
    await download(engage, elsewhere.json()["url"])


async def test_an_export_whose_process_died_is_taken_over(
    engage: httpx.AsyncClient, auth: dict[str, str], engage_db: Database,
    workspace: dict[str, Any],
) -> None:  # fmt: skip
    segment_id = await create(engage, auth, filter=EVERYONE)
    stale = datetime.now(UTC) - timedelta(minutes=10)
    await _claim_running(engage_db, workspace["workspace_id"], segment_id, stale)
    response = await start(engage, auth, segment_id)
    assert response.status_code == 201
    await download(engage, response.json()["url"])
    async with engage_db.read() as conn:
        dead = await export_repo.get(conn, "00000000-0000-0000-0000-000000000001")
    assert dead is not None
    assert (dead["status"], dead["running_segment"]) == ("failed", None)


async def test_unknown_and_expired_urls_are_404(
    settings: Settings, engage_db: Database, auth: dict[str, str]
) -> None:
    expiring = settings.model_copy(update={"export_url_ttl_s": 0})
    app = create_app(expiring, engage_db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://engage.test") as client:
        segment_id = await create(client, auth, filter=EVERYONE)
        url = (await start(client, auth, segment_id)).json()["url"]
        await app.state.engage.background.drain(30)
        expired = await client.get(httpx.URL(url).path)
        assert (expired.status_code, expired.json()) == (
            404, {"message": "Export not found or expired"})  # fmt: skip
        unknown = await client.get("/exports/segments/../../etc/passwd")
        assert unknown.status_code == 404


async def test_the_permission_is_users_export_segment(
    engage: httpx.AsyncClient, engage_db: Database, workspace: dict[str, Any],
    auth: dict[str, str],
) -> None:  # fmt: skip
    segment_id = await create(engage, auth, filter=EVERYONE)
    async with engage_db.transaction() as conn:
        key = await workspaces.create_api_key(
            conn, workspace["workspace_id"], ["segments.list"], "no-export"
        )
    denied = await start(engage, {"Authorization": f"Bearer {key.rest_api_key}"}, segment_id)
    assert (denied.status_code, denied.json()) == (403, {"message": "Access Denied"})
