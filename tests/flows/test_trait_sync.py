"""analytics → engage: user property and computation syncs to a real engage server (issue 8):
users active in the last 90 days, users created, and after the first run only changed values,
so no data point is spent on an unchanged one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cohortbridge.analytics.destinations import service as destinations
from cohortbridge.analytics.traits import service as traits
from cohortbridge.db.engine import Database
from tests.analytics.test_computations import computed
from tests.analytics.test_ingest_wire import upload
from tests.conftest import LiveServer
from tests.flows.faults import FaultyProxy
from tests.flows.test_streaming import KEY_NAME, exported, ledger, ms, stream_key

NOW = datetime.now(UTC)
SOURCE = f"users_track:{KEY_NAME}"
__all__ = ["stream_key"]


async def people(analytics: httpx.AsyncClient, project: dict[str, Any]) -> None:
    """user-1 and user-2 active lately; user-3 last active 100 days ago; user-4 active with no
    plan; an anonymous device active with a plan."""

    def event(days: float, plan: str | None = None, **ids: str) -> dict[str, Any]:
        props = {"user_properties": {"$set": {"plan": plan}}} if plan else {}
        return {**ids, "event_type": "Song Played", "time": ms(NOW - timedelta(days=days)),
                **props}  # fmt: skip

    response = await upload(analytics, project, [
        event(1, "pro", user_id="user-1"), event(2, "free", user_id="user-2"),
        event(100, "pro", user_id="user-3"), event(1, user_id="user-4"),
        event(1, "pro", device_id="device-anon-1"),
    ])  # fmt: skip
    assert response.status_code == 200, response.text


async def make_sync(
    db: Database, project: dict[str, Any], url: str, key: str, *, cadence: str = "hourly",
    identifier: dict[str, Any] | None = None, **source: Any,
) -> str:  # fmt: skip
    async with db.transaction() as conn:
        destination = await destinations.create_destination(
            conn, project["project_id"], rest_endpoint=url, data_import_key=None,
            partner_api_key=None, rest_api_key=key,
        )  # fmt: skip
        created = await traits.create_sync(
            conn, destination_id=destination["destination_id"], cadence=cadence,
            identifier=identifier or {"property": "user_id", "type": "external_id"}, **source,
        )  # fmt: skip
    return str(created["sync_id"])


def attributes(users: dict[str, Any], user_id: str) -> dict[str, Any] | None:
    found = users.get(user_id)
    return None if found is None else found.get("custom_attributes", {})


async def test_a_property_becomes_an_attribute_and_only_changes_are_sent(
    engage_server: LiveServer, engage: httpx.AsyncClient, auth: dict[str, str],
    engage_db: Database, workspace: dict[str, Any], stream_key: str,
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any],
    http: httpx.AsyncClient,
) -> None:  # fmt: skip
    assert (await engage.post("/users/track", headers=auth, json={
        "attributes": [{"external_id": "user-1", "first_name": "Ann"}]})).status_code == 201  # fmt: skip
    await people(analytics, project)
    sync_id = await make_sync(analytics_db, project, engage_server.url, stream_key,
                              user_property="plan")  # fmt: skip
    first = await traits.run_sync(analytics_db, sync_id, http)
    assert first is not None and first.status == "succeeded"
    # Active: user-1, user-2, user-4 and the anonymous user; user-3 was active 100 days ago.
    assert (first.candidates, first.sent, first.skipped, first.unchanged) == (4, 2, 2, 0)
    users = await exported(engage, auth, "user-1", "user-2", "user-3", "user-4")
    assert attributes(users, "user-1") == {"plan": "pro"}
    assert attributes(users, "user-2") == {"plan": "free"}  # created by the sync
    assert "user-3" not in users and "user-4" not in users
    assert (await ledger(engage_db, workspace))[SOURCE] == 2

    second = await traits.run_sync(analytics_db, sync_id, http)
    assert second is not None and (second.sent, second.unchanged) == (0, 2)
    assert (await ledger(engage_db, workspace))[SOURCE] == 2  # no data point spent

    await upload(analytics, project, [{"user_id": "user-1", "event_type": "Upgraded",
                                       "time": ms(NOW),
                                       "user_properties": {"$set": {"plan": "family"}}}])  # fmt: skip
    third = await traits.run_sync(analytics_db, sync_id, http)
    assert third is not None and (third.sent, third.unchanged) == (1, 1)
    users = await exported(engage, auth, "user-1")
    assert attributes(users, "user-1") == {"plan": "family"}
    assert (await ledger(engage_db, workspace))[SOURCE] == 3


async def test_a_computation_syncs_under_its_name(
    engage_server: LiveServer, engage: httpx.AsyncClient, auth: dict[str, str],
    stream_key: str, analytics: httpx.AsyncClient, analytics_db: Database,
    project: dict[str, Any], http: httpx.AsyncClient,
) -> None:  # fmt: skip
    await people(analytics, project)
    computation_id = await computed(analytics, project, {
        "kind": "count", "event_type": "Song Played", "time_type": "rolling", "time_value": 30,
    })  # fmt: skip
    sync_id = await make_sync(analytics_db, project, engage_server.url, stream_key,
                              computation_id=computation_id)  # fmt: skip
    done = await traits.run_sync(analytics_db, sync_id, http)
    assert done is not None and done.status == "succeeded", done
    users = await exported(engage, auth, "user-1", "user-2", "user-4")
    # computed() names the computation "value"; every active user has a count.
    assert {u: attributes(users, u) for u in users} == {
        "user-1": {"value": 1}, "user-2": {"value": 1}, "user-4": {"value": 1}}  # fmt: skip


async def test_a_failed_run_resends_only_what_engage_did_not_take(
    engage_server: LiveServer, engage: httpx.AsyncClient, auth: dict[str, str],
    engage_db: Database, workspace: dict[str, Any], stream_key: str,
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any],
    http: httpx.AsyncClient,
) -> None:  # fmt: skip
    total = 400  # six requests of at most 75: two rounds of four and two
    await upload(analytics, project, [
        {"user_id": f"user-{i}", "event_type": "Opened", "time": ms(NOW),
         "user_properties": {"$set": {"plan": "pro"}}} for i in range(total)
    ])  # fmt: skip
    with FaultyProxy(engage_server.url) as proxy:
        sync_id = await make_sync(analytics_db, project, proxy.url, stream_key,
                                  user_property="plan")  # fmt: skip
        # The first round goes through; the second meets an outage that outlasts the tries.
        proxy.faults.extend([None] * 4 + [503] * 6)
        failed = await traits.run_sync(analytics_db, sync_id, http)
        assert failed is not None and failed.status == "failed" and failed.error
        assert failed.sent >= 4 * 75
        again = await traits.run_sync(analytics_db, sync_id, http,
                                      now=datetime.now(UTC) + timedelta(minutes=6))  # fmt: skip
    assert again is not None and again.status == "succeeded"
    assert failed.sent + again.sent == total
    assert again.unchanged == failed.sent
    assert (await ledger(engage_db, workspace))[SOURCE] == total  # nothing sent twice


async def test_real_time_is_refused(
    engage_server: LiveServer, stream_key: str, analytics_db: Database,
    project: dict[str, Any],
) -> None:  # fmt: skip
    with pytest.raises(ValueError, match="never real-time"):
        await make_sync(analytics_db, project, engage_server.url, stream_key,
                        cadence="realtime", user_property="plan")  # fmt: skip


async def test_an_email_identifier_creates_email_only_profiles(
    engage_server: LiveServer, engage_db: Database, workspace: dict[str, Any], stream_key: str,
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any],
    http: httpx.AsyncClient,
) -> None:  # fmt: skip
    await upload(analytics, project, [{
        "user_id": "user-1", "event_type": "Opened", "time": ms(NOW),
        "user_properties": {"$set": {"plan": "pro", "email": "ann@example.com"}},
    }])  # fmt: skip
    sync_id = await make_sync(analytics_db, project, engage_server.url, stream_key,
                              cadence="once", identifier={"property": "email", "type": "email"},
                              user_property="plan")  # fmt: skip
    done = await traits.run_sync(analytics_db, sync_id, http)
    assert done is not None and done.sent == 1
    async with engage_db.read() as conn:
        row: Any = (await conn.exec_driver_sql(
            "SELECT external_id, email, custom_attributes FROM profiles")).one()  # fmt: skip
    assert row[0] is None and row[1] == "ann@example.com"
    assert "plan" in str(row[2])
