"""analytics → engage: a cohort synced by the Braze destination to a real engage server, the
seed story end to end; faults between them lose nothing (issue 7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from cohortbridge.analytics.cohorts import service as cohorts
from cohortbridge.analytics.destinations import repository as sync_repo
from cohortbridge.analytics.destinations import service as destinations
from cohortbridge.db.engine import Database
from cohortbridge.engage.cohorts import service as engage_cohorts
from cohortbridge.engage.partners import service as partners
from tests.analytics.test_ingest_wire import upload
from tests.conftest import LiveServer
from tests.flows.faults import FaultyProxy

NOW = datetime.now(UTC)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def engage_people(engage: httpx.AsyncClient, auth: dict[str, str],
                        workspace: dict[str, Any]) -> None:  # fmt: skip
    """Five identified users and one anonymous device exist in engage; user-6 does not."""
    response = await engage.post("/users/track", headers=auth, json={"attributes": [
        *({"external_id": f"user-{i}"} for i in range(1, 6)),
        {"push_token_import": True, "push_tokens": [
            {"app_id": workspace["app_id"], "token": "t", "device_id": "device-anon-1"}]},
    ]})  # fmt: skip
    assert response.status_code == 201, response.text


async def analytics_people(analytics: httpx.AsyncClient, project: dict[str, Any]) -> None:
    """Players: user-1..user-3 and user-6 (unknown to engage) lately, the anonymous device too;
    user-4 played 10 days ago; user-5 never did."""
    events = [{"user_id": f"user-{i}", "event_type": "Song Played",
               "time": ms(NOW - timedelta(hours=1))} for i in (1, 2, 3, 6)]  # fmt: skip
    events += [
        {"user_id": "user-4", "event_type": "Song Played", "time": ms(NOW - timedelta(days=10))},
        {"user_id": "user-5", "event_type": "Opened", "time": ms(NOW - timedelta(hours=1))},
        {
            "device_id": "device-anon-1",
            "event_type": "Song Played",
            "time": ms(NOW - timedelta(hours=2)),
        },
    ]
    assert (await upload(analytics, project, events)).status_code == 200


async def make_cohort(db: Database, project: dict[str, Any], days: int = 7) -> dict[str, Any]:
    definition = {"andClauses": [{"orClauses": [{"type": "event", "type_value": "Song Played",
                                                 "time_type": "rolling", "time_value": days}]}]}  # fmt: skip
    async with db.transaction() as conn:
        draft = cohorts.prepare({"name": "Players", "definition": definition}, creating=True)
        created = await cohorts.create(conn, project["project_id"], draft)
        row = await cohorts.found(conn, project["project_id"], created["cohortId"])
        await cohorts.compute(conn, row, NOW)
    return {"cohort_id": created["cohortId"]}


async def make_sync(db: Database, project: dict[str, Any], url: str, keys: dict[str, str],
                    cohort_id: str, *identifiers: str, cadence: str = "realtime") -> str:  # fmt: skip
    async with db.transaction() as conn:
        destination = await destinations.create_destination(
            conn, project["project_id"], rest_endpoint=url,
            data_import_key=keys["client_secret"], partner_api_key=keys["partner_api_key"],
        )  # fmt: skip
        created = await destinations.create_sync(
            conn, cohort_id=cohort_id, destination_id=destination["destination_id"],
            cadence=cadence, identifiers=list(identifiers),
        )  # fmt: skip
    return str(created["sync_id"])


async def in_engage(engage_db: Database, workspace: dict[str, Any], cohort_id: str) -> set[str]:
    async with engage_db.read() as conn:
        found = await engage_cohorts.members(conn, workspace["workspace_id"], "amplitude",
                                             cohort_id)  # fmt: skip
    return {x or "anonymous" for x in found}


async def recompute(db: Database, project: dict[str, Any], cohort_id: str, at: datetime) -> None:
    async with db.transaction() as conn:
        row = await cohorts.found(conn, project["project_id"], cohort_id)
        await cohorts.compute(conn, row, at)


async def test_the_seed_story(
    engage_server: LiveServer, engage: httpx.AsyncClient, auth: dict[str, str],
    engage_db: Database, workspace: dict[str, Any], braze: dict[str, str],
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any],
    http: httpx.AsyncClient,
) -> None:  # fmt: skip
    await engage_people(engage, auth, workspace)
    await analytics_people(analytics, project)
    cohort_id = (await make_cohort(analytics_db, project))["cohort_id"]
    by_user = await make_sync(analytics_db, project, engage_server.url, braze, cohort_id,
                              "user_id")  # fmt: skip
    by_device = await make_sync(analytics_db, project, engage_server.url, braze, cohort_id,
                                "device_id")  # fmt: skip
    first = await destinations.run_sync(analytics_db, by_user, http)
    assert first is not None and first.status == "succeeded"
    # user-6 is not in engage; the anonymous user has no user id (Unresolved mapping).
    assert (first.added, first.removed, first.rejected, first.skipped) == (4, 0, 1, 1)
    await destinations.run_sync(analytics_db, by_device, http)
    assert await in_engage(engage_db, workspace, cohort_id) == {"user-1", "user-2", "user-3",
                                                                "anonymous"}  # fmt: skip
    # The segment on the cohort holds exactly them.
    segment = await engage.post("/segments/create", headers=auth, json={
        "name": "Players", "filter": {"amplitude_cohorts": {"comparison": "includes_value",
                                                            "value": cohort_id}}})  # fmt: skip
    size = await engage.get("/segments/size", headers=auth,
                            params={"segment_id": segment.json()["segment_id"]})  # fmt: skip
    assert size.json()["size"] == 4
    details = await engage.get("/segments/details", headers=auth,
                               params={"segment_id": segment.json()["segment_id"]})  # fmt: skip
    assert details.json()["description"] == (
        f'Amplitude Cohorts includes "[Amplitude] Players: {cohort_id}"'
    )
    # Time passes: the week-old window lets everyone go; a new player arrives.
    await upload(analytics, project, [{"user_id": "user-5", "event_type": "Song Played",
                                       "time": ms(NOW + timedelta(days=8))}])  # fmt: skip
    await recompute(analytics_db, project, cohort_id, NOW + timedelta(days=8, hours=1))
    later = await destinations.run_sync(analytics_db, by_user, http)
    assert later is not None
    assert (later.added, later.removed) == (1, 4)  # only who entered and who left
    await destinations.run_sync(analytics_db, by_device, http)
    assert await in_engage(engage_db, workspace, cohort_id) == {"user-5"}
    size = await engage.get("/segments/size", headers=auth,
                            params={"segment_id": segment.json()["segment_id"]})  # fmt: skip
    assert size.json()["size"] == 1
    async with analytics_db.read() as conn:
        runs = await sync_repo.runs(conn, by_user, NOW - timedelta(days=1))
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"]


async def _no_wait(_seconds: float) -> None:
    return None


async def test_faults_lose_nothing_and_double_nothing(
    engage_server: LiveServer, engage: httpx.AsyncClient, auth: dict[str, str],
    engage_db: Database, workspace: dict[str, Any], braze: dict[str, str],
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any],
    http: httpx.AsyncClient,
) -> None:  # fmt: skip
    await engage.post("/users/track", headers=auth, json={"attributes": [
        {"external_id": f"member-{i:04d}"} for i in range(75)]})  # fmt: skip
    await upload(analytics, project, [{"user_id": f"member-{i:04d}", "event_type": "Song Played",
                                       "time": ms(NOW - timedelta(hours=1))}
                                      for i in range(75)])  # fmt: skip
    cohort_id = (await make_cohort(analytics_db, project))["cohort_id"]
    with FaultyProxy(engage_server.url) as proxy:
        sync_id = await make_sync(analytics_db, project, proxy.url, braze, cohort_id, "user_id")
        # Transient faults are retried: an error status of each retryable kind and a timeout.
        proxy.faults.extend([500, 429, 423, "stall", None, 502])
        result = await destinations.run_sync(analytics_db, sync_id, http, sleep=_no_wait)
        assert result is not None and result.status == "succeeded", result
        assert len(await in_engage(engage_db, workspace, cohort_id)) == 75
        # An outage longer than the retries: the run fails, the next one converges.
        await recompute(analytics_db, project, cohort_id, NOW + timedelta(days=8))
        proxy.down = True
        failed = await destinations.run_sync(analytics_db, sync_id, http, sleep=_no_wait,
                                             retries=2)  # fmt: skip
        assert failed is not None and failed.status == "failed"
        assert "gave up after 3 attempts" in (failed.error or "")
        assert len(await in_engage(engage_db, workspace, cohort_id)) == 75
        proxy.down = False
        healed = await destinations.run_sync(analytics_db, sync_id, http, sleep=_no_wait)
        assert healed is not None and (healed.status, healed.removed) == ("succeeded", 75)
        assert await in_engage(engage_db, workspace, cohort_id) == set()
    async with analytics_db.read() as conn:
        assert await sync_repo.held(conn, sync_id) == {}


async def test_a_401_after_the_key_is_invalidated_converges_after_it_is_replaced(
    engage_server: LiveServer, engage: httpx.AsyncClient, auth: dict[str, str],
    engage_db: Database, workspace: dict[str, Any], braze: dict[str, str],
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any],
    http: httpx.AsyncClient,
) -> None:  # fmt: skip
    await engage_people(engage, auth, workspace)
    await analytics_people(analytics, project)
    cohort_id = (await make_cohort(analytics_db, project))["cohort_id"]
    sync_id = await make_sync(analytics_db, project, engage_server.url, braze, cohort_id,
                              "user_id")  # fmt: skip
    async with engage_db.transaction() as conn:
        await partners.invalidate_import_key(conn, workspace["workspace_id"], "amplitude",
                                             braze["key_id"])  # fmt: skip
        fresh = await partners.create_import_key(conn, workspace["workspace_id"], "amplitude",
                                                 "http://engage.test")  # fmt: skip
    refused = await destinations.run_sync(analytics_db, sync_id, http)
    assert refused is not None and refused.status == "failed"
    assert "401" in (refused.error or "")
    async with analytics_db.transaction() as conn:
        sync = await sync_repo.sync(conn, sync_id)
        assert sync is not None
        await destinations.update_destination(conn, sync["destination"],
                                              {"data_import_key": fresh.data_import_key})  # fmt: skip
    healed = await destinations.run_sync(analytics_db, sync_id, http)
    assert healed is not None and healed.status == "succeeded"
    assert await in_engage(engage_db, workspace, cohort_id) == {"user-1", "user-2", "user-3"}


async def test_one_run_at_a_time(
    engage_server: LiveServer, braze: dict[str, str], analytics: httpx.AsyncClient,
    analytics_db: Database, project: dict[str, Any], http: httpx.AsyncClient,
) -> None:  # fmt: skip
    await analytics_people(analytics, project)
    cohort_id = (await make_cohort(analytics_db, project))["cohort_id"]
    sync_id = await make_sync(analytics_db, project, engage_server.url, braze, cohort_id,
                              "user_id", cadence="hourly")  # fmt: skip
    now = datetime.now(UTC)  # not the module's NOW: the suite may have run for minutes
    async with analytics_db.transaction() as conn:
        assert await sync_repo.lease(conn, sync_id, now, now + timedelta(minutes=5))
    assert await destinations.run_sync(analytics_db, sync_id, http) is None  # held
    # A lease that ran out (its worker died) is taken over.
    taken = await destinations.run_sync(analytics_db, sync_id, http, now=now + timedelta(hours=1))
    assert taken is not None and taken.status == "succeeded"
    async with analytics_db.read() as conn:
        sync = await sync_repo.sync(conn, sync_id)
    assert sync is not None and sync["leased_until"] is None
    assert sync["next_run_at"] > now + timedelta(minutes=59)
