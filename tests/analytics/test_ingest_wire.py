"""POST /2/httpapi and /batch: bodies and status codes exactly as the SDKs read them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from cohortbridge.analytics.identity import repository as identities
from cohortbridge.analytics.ingest.models import events
from cohortbridge.db.engine import Database

T = 1_764_000_000_000  # 2025-11-24, in milliseconds


async def upload(
    client: httpx.AsyncClient, project: dict[str, Any], events: list[Any], path: str = "/2/httpapi",
    **extra: Any,
) -> httpx.Response:  # fmt: skip
    return await client.post(path, json={"api_key": project["api_key"], "events": events, **extra})


async def user(db: Database, project: dict[str, Any], **ids: str) -> dict[str, Any] | None:
    async with db.read() as conn:
        return await identities.find_user(
            conn, project["project_id"], user_id=ids.get("user_id"), device_id=ids.get("device_id")
        )


@pytest.mark.parametrize("path", ["/2/httpapi", "/batch"])
async def test_success_body(
    analytics: httpx.AsyncClient, project: dict[str, Any], path: str
) -> None:
    events = [{"user_id": "alice-1", "event_type": "played", "time": T},
              {"device_id": "device-1", "event_type": "opened"}]  # fmt: skip
    response = await upload(analytics, project, events, path)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"code", "events_ingested", "payload_size_bytes", "server_upload_time"}
    assert body["code"] == 200
    assert body["events_ingested"] == 2
    assert body["payload_size_bytes"] == len(response.request.content)


@pytest.mark.parametrize(("body", "expected"), [
    (b"", {"code": 400, "error": "Missing request body"}),
    (b"{nope", {"code": 400, "error": "Invalid JSON request body"}),
    (b"[]", {"code": 400, "error": "Invalid JSON request body"}),
    (b'{"events": []}', {"code": 400, "error": "Request missing required field",
                         "missing_field": "api_key"}),
    (b'{"api_key": "nope", "events": []}', {"code": 400, "error": "Invalid API key: nope"}),
])  # fmt: skip
async def test_request_errors(
    analytics: httpx.AsyncClient, project: dict[str, Any], body: bytes, expected: dict[str, Any]
) -> None:
    response = await analytics.post("/2/httpapi", content=body,
                                    headers={"content-type": "application/json"})  # fmt: skip
    assert (response.status_code, response.json()) == (400, expected)


async def test_missing_events_field(analytics: httpx.AsyncClient, project: dict[str, Any]) -> None:
    response = await analytics.post("/2/httpapi", json={"api_key": project["api_key"],
                                                        "Events": []})  # fmt: skip
    assert response.json() == {"code": 400, "error": "Request missing required field",
                               "missing_field": "events"}  # fmt: skip


async def test_invalid_events_are_named_by_index_and_nothing_is_stored(
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any]
) -> None:
    events = [
        {"user_id": "valid-user", "event_type": "ok"},
        {"user_id": "valid-user", "event_type": "bad time", "time": "2025-01-01T00:00:00Z"},
        {"event_type": "no ids"},
        {"user_id": "valid-user"},
        {"user_id": "null", "event_type": "placeholder id"},
        {"user_id": "abc", "event_type": "short id"},
        {"device_id": "dev-ok-1", "event_type": "deep", "event_properties": _nested(41)},
        {"user_id": "valid-user", "event_type": "x" * 1025},
        {"user_id": "valid-user", "event_type": "mix",
         "user_properties": {"$set": {"a": 1}, "plain": 2}},
        "not an object",
    ]  # fmt: skip
    response = await upload(analytics, project, events)
    assert response.status_code == 400
    assert response.json() == {
        "code": 400, "error": "Invalid field values on some events",
        "events_with_invalid_fields": {"time": [1], "user_id": [4], "event_properties": [6],
                                       "event_type": [7], "user_properties": [8], "event": [9]},
        "events_with_missing_fields": {"user_id": [2], "event_type": [3]},
        "events_with_invalid_id_lengths": {"user_id": [5]},
    }  # fmt: skip
    assert await user(analytics_db, project, user_id="valid-user") is None


@pytest.mark.parametrize("path", ["/2/httpapi", "/batch"])
async def test_nul_characters_are_invalid_fields_on_both_databases(
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any], path: str
) -> None:
    """PostgreSQL stores U+0000 in neither text nor JSON: refused as Amplitude refuses a bad
    value, on SQLite too, instead of a 500 half-way through the write."""
    events = [
        {"user_id": "valid-user", "event_type": "ok"},
        {"user_id": "user-\x00-1", "event_type": "nul in an id"},
        {"user_id": "valid-user", "event_type": "nul\x00"},
        {"user_id": "valid-user", "event_type": "e", "event_properties": {"a": ["b", "c\x00"]}},
        {"user_id": "valid-user", "event_type": "e", "user_properties": {"$set": {"k\x00": 1}}},
        {"user_id": "valid-user", "event_type": "e", "platform": "Web\x00"},
    ]
    response = await upload(analytics, project, events, path)
    assert response.status_code == 400, response.text
    assert response.json()["events_with_invalid_fields"] == {
        "user_id": [1], "event_type": [2], "event_properties": [3], "user_properties": [4],
        "platform": [5],
    }  # fmt: skip
    assert await user(analytics_db, project, user_id="valid-user") is None
    nul_key = await analytics.post(path, json={"api_key": "key\x00", "events": events[:1]})
    assert (nul_key.status_code, nul_key.json()["error"]) == (400, "Invalid API key: key\x00")
    identify = await analytics.post("/identify", data={
        "api_key": project["api_key"],
        "identification": '{"user_id": "valid-user", "user_properties": {"$set": {"a": "\\u0000"}}}',
    })  # fmt: skip
    assert identify.status_code == 400, identify.text
    assert identify.json()["events_with_invalid_fields"] == {"user_properties": [0]}
    # An escaped backslash before "u0000" is text, not NUL.
    fine = [{"user_id": "valid-user", "event_type": "\\u0000 as text"}]
    assert (await upload(analytics, project, fine, path)).status_code == 200


async def test_short_ids_alone_and_min_id_length(
    analytics: httpx.AsyncClient, project: dict[str, Any]
) -> None:
    short = await upload(analytics, project, [{"user_id": "ab", "event_type": "e"}])
    assert short.json() == {"code": 400, "error": "Invalid id length for user_id or device_id",
                            "events_with_invalid_id_lengths": {"user_id": [0]}}  # fmt: skip
    allowed = await upload(analytics, project, [{"user_id": "ab", "event_type": "e"}],
                           options={"min_id_length": 2})  # fmt: skip
    assert allowed.status_code == 200


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


async def test_payload_limits(analytics: httpx.AsyncClient, project: dict[str, Any]) -> None:
    too_many = [{"device_id": f"device-{i}", "event_type": "e"} for i in range(2001)]
    response = await upload(analytics, project, too_many, "/batch")
    assert (response.status_code, response.json()) == (413, {"code": 413,
                                                             "error": "Payload too large"})  # fmt: skip
    big = [{"device_id": "device-1", "event_type": "e", "event_properties": {"p": "x" * 1000}}
           for _ in range(1100)]  # fmt: skip
    assert (await upload(analytics, project, big)).status_code == 413  # over 1 MB for HTTP V2
    assert (await upload(analytics, project, big, "/batch")).status_code == 200  # under 20 MB


async def test_insert_ids_are_deduplicated_per_device(
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any]
) -> None:
    event = {"user_id": "dedupe-user", "event_type": "e", "insert_id": "ins-1", "time": T}
    await upload(analytics, project, [event, event])
    await upload(analytics, project, [event, {**event, "device_id": "another-device"}])
    async with analytics_db.read() as conn:
        stored = (await conn.execute(select(func.count()).select_from(events))).scalar_one()
    assert stored == 2


async def test_device_id_defaults_to_a_hash_of_user_id(
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any]
) -> None:
    await upload(analytics, project, [{"user_id": "hash-user", "event_type": "e"}])
    device = hashlib.md5(b"hash-user", usedforsecurity=False).hexdigest()
    found = await user(analytics_db, project, device_id=device)
    assert found is not None
    assert found["user_id"] == "hash-user"


async def test_throttling_per_device_answers_429_with_the_maps(
    analytics: httpx.AsyncClient, project: dict[str, Any]
) -> None:
    burst = [{"device_id": "busy-device", "event_type": "e"}] * 901  # > 30 eps over 30 s
    response = await upload(analytics, project, [{"device_id": "calm-device", "event_type": "e"},
                                                 *burst])  # fmt: skip
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == 429
    assert body["error"] == "Too many requests for some devices and users"
    assert body["eps_threshold"] == 30
    assert set(body["throttled_devices"]) == {"busy-device"}
    assert body["throttled_users"] == {}
    assert body["throttled_events"] == list(range(1, 902))
    calm = await upload(analytics, project, [{"device_id": "calm-device", "event_type": "e"}])
    assert calm.status_code == 200
    batch = await upload(analytics, project, burst, "/batch")  # 1,000 eps for Batch
    assert batch.status_code == 200
    json.dumps(body)
