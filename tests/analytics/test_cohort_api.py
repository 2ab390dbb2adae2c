"""The Behavioral Cohorts REST API (spec amplitude §3.2) and our definition endpoints."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
from datetime import timedelta
from typing import Any

import httpx

from cohortbridge.analytics.cohorts import tasks
from cohortbridge.kit.clock import utcnow
from tests.analytics.test_ingest_wire import upload

PLAYERS = {"andClauses": [{"orClauses": [{"type": "event", "type_value": "Song Played"}]}]}


def basic(project: dict[str, Any]) -> dict[str, str]:
    token = base64.b64encode(f"{project['api_key']}:{project['secret_key']}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def seed(analytics: httpx.AsyncClient, project: dict[str, Any]) -> None:
    response = await upload(analytics, project, [
        {"user_id": "api-user-1", "event_type": "Song Played", "user_properties": {"plan": "pro"}},
        {"user_id": "api-user-2", "event_type": "Song Played", "user_properties": {"plan": "free",
                                                                                 "n": 3}},
        {"user_id": "api-user-3", "event_type": "Opened"},
    ])  # fmt: skip
    assert response.status_code == 200


async def make_cohort(analytics: httpx.AsyncClient, project: dict[str, Any]) -> str:
    created = await analytics.post("/api/3/cohorts/behavioral", headers=basic(project), json={
        "name": "Players", "definition": PLAYERS, "description": "who played",
    })  # fmt: skip
    assert created.status_code == 200, created.text
    cohort_id: str = created.json()["cohortId"]
    computed = await analytics.post(f"/api/3/cohorts/{cohort_id}/compute", headers=basic(project))
    assert computed.json() == {"cohortId": cohort_id, "version": 1, "size": 2, "entered": 2,
                               "left": 0}  # fmt: skip
    return cohort_id


async def download(analytics: httpx.AsyncClient, project: dict[str, Any], cohort_id: str,
                   **params: Any) -> list[dict[str, str]]:  # fmt: skip
    asked = await analytics.get(f"/api/5/cohorts/request/{cohort_id}", headers=basic(project),
                                params=params)  # fmt: skip
    assert asked.status_code == 202
    request_id = asked.json()["request_id"]
    assert asked.json() == {"request_id": request_id, "cohort_id": cohort_id}
    for _ in range(500):
        status = await analytics.get(f"/api/5/cohorts/request-status/{request_id}",
                                     headers=basic(project))  # fmt: skip
        if status.status_code == 200:
            assert status.json()["async_status"] == "JOB COMPLETED"
            break
        assert status.json()["async_status"] == "JOB INPROGRESS"
        await asyncio.sleep(0.02)
    file = await analytics.get(f"/api/5/cohorts/request/{request_id}/file",
                               headers=basic(project))  # fmt: skip
    assert file.status_code == 200
    assert file.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(file.text)))


async def test_list_request_and_download(
    analytics: httpx.AsyncClient, project: dict[str, Any]
) -> None:
    await seed(analytics, project)
    cohort_id = await make_cohort(analytics, project)
    listed = await analytics.get("/api/3/cohorts", headers=basic(project))
    (cohort,) = listed.json()["cohorts"]
    assert cohort["id"] == cohort_id
    assert (cohort["name"], cohort["size"], cohort["appId"], cohort["finished"]) == (
        "Players", 2, project["project_id"], True)  # fmt: skip
    assert cohort["definition"] == PLAYERS
    assert isinstance(cohort["lastComputed"], int)
    assert "syncMetadata" not in cohort
    synced = await analytics.get("/api/3/cohorts", headers=basic(project),
                                 params={"includeSyncInfo": "true", "cohortIds": cohort_id})  # fmt: skip
    assert synced.json()["cohorts"][0]["syncMetadata"] == []
    rows = await download(analytics, project, cohort_id)
    assert sorted(r["user_id"] for r in rows) == ["api-user-1", "api-user-2"]
    assert set(rows[0]) == {"amplitude_id", "user_id"}
    with_props = await download(analytics, project, cohort_id, props=1, propKeys=["plan", "n"])
    assert sorted((r["user_id"], r["plan"], r["n"]) for r in with_props) == [
        ("api-user-1", "pro", ""), ("api-user-2", "free", "3")]  # fmt: skip
    every = await download(analytics, project, cohort_id, props=1)
    assert set(every[0]) == {"amplitude_id", "user_id", "plan", "n"}


async def test_credentials(analytics: httpx.AsyncClient, project: dict[str, Any]) -> None:
    for headers in ({}, {"Authorization": "Basic !!!"},
                    {"Authorization": "Basic " + base64.b64encode(b"a:b").decode()},
                    {"Authorization": f"Api-Key {project['secret_key']}"}):  # fmt: skip
        response = await analytics.get("/api/3/cohorts", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["http_code"] == 401
    missing = await analytics.get("/api/5/cohorts/request/nope", headers=basic(project))
    assert missing.status_code == 404
    assert missing.json() == {"error": {"http_code": 404, "type": "not_found",
                                        "message": "Cohort nope not found",
                                        "metadata": {"cohort_id": "nope"}}}  # fmt: skip


async def test_upload_and_membership(analytics: httpx.AsyncClient, project: dict[str, Any]) -> None:
    await seed(analytics, project)
    body = {"name": "VIPs", "app_id": project["project_id"], "id_type": "BY_USER_ID",
            "ids": ["api-user-1", "ghost"], "owner": "ops@example.com", "published": True}  # fmt: skip
    uploaded = await analytics.post("/api/3/cohorts/upload", headers=basic(project), json=body)
    assert uploaded.status_code == 200, uploaded.text
    cohort_id = uploaded.json()["cohortId"]
    assert uploaded.json()["metadata"] == {"matched": 1, "totals": 2,
                                           "invalid_ids_sample": ["ghost"]}  # fmt: skip
    changed = await analytics.post("/api/3/cohorts/membership", headers=basic(project), json={
        "cohort_id": cohort_id, "memberships": [
            {"ids": ["api-user-2", "api-user-3"], "id_type": "BY_NAME", "operation": "ADD"},
            {"ids": ["api-user-1"], "id_type": "BY_NAME", "operation": "REMOVE"},
        ],
    })  # fmt: skip
    assert changed.json() == {"cohort_id": cohort_id, "memberships_result": [
        {"skipped_ids": [], "id_type": "BY_NAME", "operation": "ADD"},
        {"skipped_ids": [], "id_type": "BY_NAME", "operation": "REMOVE"}]}  # fmt: skip
    rows = await download(analytics, project, cohort_id)
    assert sorted(r["user_id"] for r in rows) == ["api-user-2", "api-user-3"]
    by_id = rows[0]["amplitude_id"]
    replaced = await analytics.post("/api/3/cohorts/upload", headers=basic(project), json={
        **body, "id_type": "BY_AMP_ID", "ids": [by_id], "existing_cohort_id": cohort_id,
    })  # fmt: skip
    assert replaced.json()["cohortId"] == cohort_id
    assert [r["amplitude_id"] for r in await download(analytics, project, cohort_id)] == [by_id]
    listed = (await analytics.get("/api/3/cohorts", headers=basic(project))).json()["cohorts"]
    assert [(c["id"], c["type"], c["size"], c["owners"]) for c in listed] == [
        (cohort_id, "static", 1, ["ops@example.com"])]  # fmt: skip
    wrong_app = await analytics.post("/api/3/cohorts/upload", headers=basic(project),
                                     json={**body, "app_id": 999})  # fmt: skip
    assert wrong_app.status_code == 403
    incomplete = await analytics.post("/api/3/cohorts/upload", headers=basic(project),
                                      json={"name": "x"})  # fmt: skip
    assert incomplete.status_code == 400


async def test_update_archive_and_bad_definitions(
    analytics: httpx.AsyncClient, project: dict[str, Any]
) -> None:
    await seed(analytics, project)
    cohort_id = await make_cohort(analytics, project)
    openers = {"andClauses": [{"orClauses": [{"type": "event", "type_value": "Opened"}]}]}
    updated = await analytics.put(f"/api/3/cohorts/behavioral/{cohort_id}", headers=basic(project),
                                  json={"definition": openers, "refresh": "minute"})  # fmt: skip
    assert updated.status_code == 200
    computed = await analytics.post(f"/api/3/cohorts/{cohort_id}/compute", headers=basic(project))
    assert computed.json()["entered"] == 1
    assert computed.json()["left"] == 2
    history = await analytics.get(f"/api/3/cohorts/{cohort_id}/computations",
                                  headers=basic(project))  # fmt: skip
    assert [(h["version"], h["size"]) for h in history.json()["computations"]] == [(2, 1), (1, 2)]
    bad = await analytics.post("/api/3/cohorts/behavioral", headers=basic(project),
                               json={"name": "x", "definition": {"andClauses": "nope"}})  # fmt: skip
    assert bad.status_code == 400
    assert bad.json()["error"]["metadata"]["path"] == "definition.andClauses"
    archived = await analytics.delete(f"/api/3/cohorts/{cohort_id}", headers=basic(project))
    assert archived.status_code == 200
    assert (await analytics.get("/api/3/cohorts", headers=basic(project))).json() == {"cohorts": []}


async def test_profile_api_cohort_ids_and_the_scheduler(
    analytics: httpx.AsyncClient, analytics_db: Any, project: dict[str, Any]
) -> None:
    await seed(analytics, project)
    listed = await analytics.post(
        "/api/3/cohorts/behavioral",
        headers=basic(project),
        json={"name": "Listed", "definition": PLAYERS, "profile_api": True, "refresh": "minute"},
    )
    hidden = await analytics.post("/api/3/cohorts/behavioral", headers=basic(project), json={
        "name": "Hidden", "definition": PLAYERS})  # fmt: skip
    # New cohorts are due at once; the tick computes each of them once.
    assert await tasks.compute_due(analytics_db) == 2
    assert await tasks.compute_due(analytics_db) == 0
    # A minute later only the real-time one is due again; an hour later both.
    assert await tasks.compute_due(analytics_db, utcnow() + timedelta(seconds=61)) == 1
    assert await tasks.compute_due(analytics_db, utcnow() + timedelta(hours=2)) == 2
    key = {"Authorization": f"Api-Key {project['secret_key']}"}
    profile = await analytics.get("/v1/userprofile", headers=key,
                                  params={"user_id": "api-user-1", "get_cohort_ids": "true"})  # fmt: skip
    assert profile.json()["userData"]["cohort_ids"] == [listed.json()["cohortId"]]
    assert hidden.json()["cohortId"] not in profile.json()["userData"]["cohort_ids"]
    plain = await analytics.get("/v1/userprofile", headers=key, params={"user_id": "api-user-3"})
    assert plain.json()["userData"]["cohort_ids"] is None
