"""analytics → engage: events streamed through the outbox to a real engage server, with faults
between them (issue 8). Every accepted event a stream takes is forwarded at least once;
duplicates happen only where engage's response was lost, and these tests count them."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cohortbridge.analytics.destinations import service as destinations
from cohortbridge.analytics.streams import logic
from cohortbridge.analytics.streams import repository as stream_repo
from cohortbridge.analytics.streams import service as streams
from cohortbridge.analytics.streams.braze import TrackClient
from cohortbridge.db.engine import Database
from cohortbridge.engage.datapoints import service as datapoints
from cohortbridge.engage.workspaces import service as workspaces
from tests.analytics.test_ingest_wire import upload
from tests.conftest import LiveServer
from tests.flows.faults import FaultyProxy

NOW = datetime.now(UTC)
KEY_NAME = "amplitude-stream"


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@pytest.fixture
async def stream_key(engage_db: Database, workspace: dict[str, Any]) -> str:
    """A REST API key for the stream, named so that the ledger shows its writes apart."""
    async with engage_db.transaction() as conn:
        created = await workspaces.create_api_key(conn, workspace["workspace_id"],
                                                  ["users.track"], KEY_NAME)  # fmt: skip
    return created.rest_api_key


async def make_stream(
    db: Database, project: dict[str, Any], url: str, key: str, workspace: dict[str, Any],
    **config: Any,
) -> str:  # fmt: skip
    async with db.transaction() as conn:
        destination = await destinations.create_destination(
            conn, project["project_id"], rest_endpoint=url, data_import_key=None,
            partner_api_key=None, rest_api_key=key, app_id=workspace["app_id"],
        )  # fmt: skip
        created = await streams.create_stream(conn, destination_id=destination["destination_id"],
                                              name=None, config=config)  # fmt: skip
    return str(created["stream_id"])


async def exported(engage: httpx.AsyncClient, auth: dict[str, str], *ids: str) -> dict[str, Any]:
    """Profiles by external id, 50 a request (Braze's cap)."""
    found: dict[str, Any] = {}
    for start in range(0, len(ids), 50):
        response = await engage.post("/users/export/ids", headers=auth, json={
            "external_ids": list(ids[start : start + 50]),
            "fields_to_export": ["external_id", "custom_events", "custom_attributes"],
        })  # fmt: skip
        assert response.status_code == 201, response.text
        found.update({u["external_id"]: u for u in response.json()["users"]})
    return found


def event_counts(user: dict[str, Any] | None) -> dict[str, int]:
    return {e["name"]: e["count"] for e in (user or {}).get("custom_events", [])}


async def ledger(engage_db: Database, workspace: dict[str, Any]) -> dict[str, int]:
    async with engage_db.read() as conn:
        return dict((await datapoints.report(conn, workspace["workspace_id"]))["by_source"])


async def backlog(db: Database, stream_id: str) -> dict[str, int]:
    async with db.read() as conn:
        return await stream_repo.backlog(conn, stream_id)


def played(user_id: str | None, genre: str, **extra: Any) -> dict[str, Any]:
    event = {"event_type": "Song Played", "time": ms(NOW - timedelta(minutes=5)),
             "event_properties": {"genre": genre, "seconds": 200}, **extra}  # fmt: skip
    if user_id is not None:
        event["user_id"] = user_id
    return event


async def test_selected_events_reach_engage_and_count_under_the_key(
    engage_server: LiveServer, engage: httpx.AsyncClient, auth: dict[str, str],
    engage_db: Database, workspace: dict[str, Any], stream_key: str,
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any],
    http: httpx.AsyncClient,
) -> None:  # fmt: skip
    assert (await engage.post("/users/track", headers=auth, json={
        "attributes": [{"external_id": "user-1"}]})).status_code == 201  # fmt: skip
    stream_id = await make_stream(
        analytics_db, project, engage_server.url, stream_key, workspace,
        event_types=["Song Played"], filters=[{"prop": "genre", "op": "is", "values": ["rock"]}],
        event_properties=["genre"], user_properties=["plan"],
    )  # fmt: skip
    response = await upload(analytics, project, [
        played("user-1", "rock", user_properties={"plan": "pro"}),
        played("user-1", "pop"),  # filtered out
        played("user-2", "rock"),  # not in engage yet: created
        played(None, "rock", device_id="device-anon-1"),  # no user id: not sendable
        {"user_id": "user-1", "event_type": "Opened", "time": ms(NOW)},  # not selected
    ])  # fmt: skip
    assert response.status_code == 200
    assert await backlog(analytics_db, stream_id) == {"pending": 2, "dead": 0}
    done = await streams.forward(analytics_db, http)
    assert (done.forwarded, done.rejected, done.failed, done.requests) == (2, 0, 0, 1)
    users = await exported(engage, auth, "user-1", "user-2")
    assert event_counts(users["user-1"]) == {"Song Played": 1}
    assert event_counts(users["user-2"]) == {"Song Played": 1}
    assert await backlog(analytics_db, stream_id) == {"pending": 0, "dead": 0}
    # The stream's writes are under its key's name: 1 data point per custom event.
    assert (await ledger(engage_db, workspace))[f"users_track:{KEY_NAME}"] == 2
    async with analytics_db.read() as conn:
        history = await streams.history(conn, stream_id, NOW - timedelta(hours=1))
    assert sum(m["forwarded"] for m in history["minutes"]) == 2
    assert history["minutes"][0]["latency_ms_max"] >= 0


async def test_update_existing_only_never_creates_users(
    engage_server: LiveServer, engage: httpx.AsyncClient, auth: dict[str, str],
    workspace: dict[str, Any], stream_key: str, analytics: httpx.AsyncClient,
    analytics_db: Database, project: dict[str, Any], http: httpx.AsyncClient,
) -> None:  # fmt: skip
    assert (await engage.post("/users/track", headers=auth, json={
        "attributes": [{"external_id": "user-1"}]})).status_code == 201  # fmt: skip
    await make_stream(analytics_db, project, engage_server.url, stream_key, workspace,
                      update_existing_only=True)  # fmt: skip
    await upload(analytics, project, [played("user-1", "rock"), played("user-9", "rock")])
    done = await streams.forward(analytics_db, http)
    assert done.forwarded == 2  # engage took both; it skipped the unknown user
    users = await exported(engage, auth, "user-1", "user-9")
    assert event_counts(users["user-1"]) == {"Song Played": 1}
    assert "user-9" not in users


async def test_objects_engage_rejects_are_kept_dead_one_by_one(
    engage_server: LiveServer, engage: httpx.AsyncClient, auth: dict[str, str],
    workspace: dict[str, Any], stream_key: str, analytics: httpx.AsyncClient,
    analytics_db: Database, project: dict[str, Any], http: httpx.AsyncClient,
) -> None:  # fmt: skip
    stream_id = await make_stream(analytics_db, project, engage_server.url, stream_key,
                                  workspace, event_properties=["genre"])  # fmt: skip
    await upload(analytics, project, [
        played("user-1", "rock"), played("user-2", "x" * 300), played("user-3", "jazz"),
    ])  # fmt: skip
    done = await streams.forward(analytics_db, http)
    assert (done.forwarded, done.rejected) == (2, 1)
    users = await exported(engage, auth, "user-1", "user-2", "user-3")
    assert set(users) == {"user-1", "user-3"}
    async with analytics_db.read() as conn:
        history = await streams.history(conn, stream_id, NOW - timedelta(hours=1))
    (dead,) = history["dead_rows"]
    assert dead["payload"]["external_id"] == "user-2" and dead["error"]
    # Dead rows are never sent again.
    assert (await streams.forward(analytics_db, http)).requests == 0


async def test_outage_then_restart_forwards_everything_exactly_once(
    engage_server: LiveServer, engage: httpx.AsyncClient, auth: dict[str, str],
    workspace: dict[str, Any], stream_key: str, analytics: httpx.AsyncClient,
    analytics_db: Database, project: dict[str, Any], http: httpx.AsyncClient,
) -> None:  # fmt: skip
    with FaultyProxy(engage_server.url) as proxy:
        stream_id = await make_stream(analytics_db, project, proxy.url, stream_key, workspace)
        await upload(analytics, project, [played(f"user-{i}", "rock") for i in range(100)])
        proxy.down = True
        first = await streams.forward(analytics_db, http)
        assert (first.forwarded, first.failed) == (0, 100)
        assert proxy.failed == 2 * logic.TRIES  # two requests (75 + 25), three tries each
        # Nothing is due before the next attempt's time.
        assert (await streams.forward(analytics_db, http)).requests == 0
        # "Restart": a new process opens the same database and engage is back.
        reopened = Database.connect(analytics_db.url)
        try:
            proxy.down = False
            later = datetime.now(UTC) + timedelta(minutes=2)
            done = await streams.forward(reopened, http, now=later)
        finally:
            await reopened.dispose()
    assert done.forwarded == 100
    users = await exported(engage, auth, *(f"user-{i}" for i in range(100)))
    assert all(event_counts(users[f"user-{i}"]) == {"Song Played": 1} for i in range(100))
    assert await backlog(analytics_db, stream_id) == {"pending": 0, "dead": 0}


async def test_duplicates_only_where_a_response_was_lost(
    engage_server: LiveServer, engage: httpx.AsyncClient, auth: dict[str, str],
    workspace: dict[str, Any], stream_key: str, analytics: httpx.AsyncClient,
    analytics_db: Database, project: dict[str, Any], http: httpx.AsyncClient,
) -> None:  # fmt: skip
    sent = 300  # four requests of 75
    with FaultyProxy(engage_server.url) as proxy:
        await make_stream(analytics_db, project, proxy.url, stream_key, workspace)
        await upload(analytics, project, [played(f"user-{i}", "rock") for i in range(sent)])
        # One response lost; a 503 and a 429 that the next try gets past.
        proxy.faults.extend(["lose", None, 503, 429])
        done = await streams.forward(analytics_db, http)
    assert done.forwarded == sent
    users = await exported(engage, auth, *(f"user-{i}" for i in range(sent)))
    counts = [event_counts(users[f"user-{i}"]).get("Song Played", 0) for i in range(sent)]
    assert min(counts) == 1
    duplicates = sum(counts) - sent
    # Exactly the objects of the request whose response was lost arrived twice.
    assert proxy.lost == 1
    assert duplicates == logic.MAX_OBJECTS


async def test_retries_run_out_after_ten_attempts(
    engage_server: LiveServer, workspace: dict[str, Any], stream_key: str,
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any],
    http: httpx.AsyncClient,
) -> None:  # fmt: skip
    async def no_sleep(_seconds: float) -> None:
        return None

    with FaultyProxy(engage_server.url) as proxy:
        stream_id = await make_stream(analytics_db, project, proxy.url, stream_key, workspace)
        await upload(analytics, project, [played("user-1", "rock")])
        proxy.down = True
        client = TrackClient(proxy.url, stream_key, http, sleep=no_sleep)
        moment = datetime.now(UTC)
        for _ in range(logic.ATTEMPTS):
            await streams.forward_stream(analytics_db, stream_id, http, now=moment, client=client)
            moment += timedelta(hours=1)
    assert proxy.failed == logic.ATTEMPTS * logic.TRIES
    assert await backlog(analytics_db, stream_id) == {"pending": 0, "dead": 1}
    async with analytics_db.read() as conn:
        (dead,) = (await streams.history(conn, stream_id, moment - timedelta(days=1)))["dead_rows"]
    assert dead["attempts"] == logic.ATTEMPTS and "gave up after 10 attempts" in dead["error"]


async def test_a_new_key_after_401_delivers_what_waited(
    engage_server: LiveServer, engage: httpx.AsyncClient, auth: dict[str, str],
    workspace: dict[str, Any], stream_key: str, analytics: httpx.AsyncClient,
    analytics_db: Database, project: dict[str, Any], http: httpx.AsyncClient,
) -> None:  # fmt: skip
    stream_id = await make_stream(analytics_db, project, engage_server.url, "wrong-key",
                                  workspace)  # fmt: skip
    await upload(analytics, project, [played("user-1", "rock")])
    refused = await streams.forward(analytics_db, http)
    assert (refused.forwarded, refused.failed) == (0, 1)
    async with analytics_db.transaction() as conn:
        found = await stream_repo.stream(conn, stream_id)
        assert found is not None
        await destinations.update_destination(conn, found["destination"],
                                              {"rest_api_key": stream_key})  # fmt: skip
    done = await streams.forward(analytics_db, http, now=datetime.now(UTC) + timedelta(minutes=2))
    assert done.forwarded == 1
    assert event_counts((await exported(engage, auth, "user-1"))["user-1"]) == {"Song Played": 1}


async def test_two_forwarders_send_each_event_once(
    engage_server: LiveServer, engage: httpx.AsyncClient, auth: dict[str, str],
    workspace: dict[str, Any], stream_key: str, analytics: httpx.AsyncClient,
    analytics_db: Database, project: dict[str, Any],
) -> None:  # fmt: skip
    sent = 600
    await make_stream(analytics_db, project, engage_server.url, stream_key, workspace)
    for start in range(0, sent, 200):
        await upload(analytics, project, [played(f"user-{i}", "rock")
                                          for i in range(start, start + 200)])  # fmt: skip
    other = Database.connect(analytics_db.url)
    # No response may be lost here: the fixture's 1 s timeout makes a slow answer one (a
    # retry, then one batch twice, was measured on a loaded machine).
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            results = await asyncio.gather(streams.forward(analytics_db, http),
                                           streams.forward(other, http))  # fmt: skip
    finally:
        await other.dispose()
    assert sum(r.forwarded for r in results) == sent
    users = await exported(engage, auth, *(f"user-{i}" for i in range(sent)))
    assert sum(event_counts(u)["Song Played"] for u in users.values()) == sent


async def test_send_users_turns_property_changes_into_attributes(
    engage_server: LiveServer, engage: httpx.AsyncClient, auth: dict[str, str],
    engage_db: Database, workspace: dict[str, Any], stream_key: str,
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any],
    http: httpx.AsyncClient,
) -> None:  # fmt: skip
    await make_stream(analytics_db, project, engage_server.url, stream_key, workspace,
                      send_events=False, send_users=True, user_attributes=["plan", "age"])  # fmt: skip
    identify = {"user_id": "user-1", "user_properties": {"$set": {"plan": "pro", "age": 41}}}
    response = await analytics.post("/identify", data={
        "api_key": project["api_key"], "identification": json.dumps([identify]),
    })  # fmt: skip
    assert response.status_code == 200, response.text
    await upload(analytics, project, [played("user-1", "rock",
                                             user_properties={"$set": {"city": "Oslo"}})])  # fmt: skip
    done = await streams.forward(analytics_db, http)
    assert done.forwarded == 1  # the identify; the event changed no selected property
    user = (await exported(engage, auth, "user-1"))["user-1"]
    assert user["custom_attributes"] == {"plan": "pro", "age": 41}
    assert "custom_events" not in user  # events are not sent by this stream
    assert (await ledger(engage_db, workspace))[f"users_track:{KEY_NAME}"] == 2


async def test_a_busy_stream_does_not_hold_another_back(
    engage_server: LiveServer, workspace: dict[str, Any], stream_key: str,
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any],
    http: httpx.AsyncClient,
) -> None:  # fmt: skip
    busy = await make_stream(analytics_db, project, engage_server.url, stream_key, workspace)
    small = await make_stream(analytics_db, project, engage_server.url, stream_key, workspace,
                              event_types=["Rare"])  # fmt: skip
    async with analytics_db.transaction() as conn:  # the busy one comes first in id order
        await stream_repo.update_stream(conn, busy, {"id": "a-busy"})
        await stream_repo.update_stream(conn, small, {"id": "b-small"})
    big = 2 * logic.CLAIM + 300  # three rounds of the busy stream
    for start in range(0, big, 900):
        await upload(analytics, project, [played(f"user-{i}", "rock")
                                          for i in range(start, min(big, start + 900))])  # fmt: skip
    await upload(analytics, project, [
        {"user_id": f"user-{i}", "event_type": "Rare", "time": ms(NOW)} for i in range(10)])  # fmt: skip
    acks: list[int] = []
    done = await streams.forward(analytics_db, http,
                                 on_ack=lambda enqueued, _at: acks.append(len(enqueued)))  # fmt: skip
    assert done.forwarded == big + 10 + 10
    # The small stream's ten went in the first turn, not after the busy one's rounds.
    assert acks[:2] == [logic.CLAIM, 10]


async def test_a_budget_ends_the_forwarding_after_its_round(
    engage_server: LiveServer, workspace: dict[str, Any], stream_key: str,
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any],
    http: httpx.AsyncClient,
) -> None:  # fmt: skip
    """A queued job forwards for a bounded time, so a worker can stop under constant ingest."""
    stream_id = await make_stream(analytics_db, project, engage_server.url, stream_key,
                                  workspace)  # fmt: skip
    many = logic.CLAIM + 300  # two rounds
    for start in range(0, many, 900):
        await upload(analytics, project, [played(f"user-{i}", "rock")
                                          for i in range(start, min(many, start + 900))])  # fmt: skip
    first = await streams.forward_stream(analytics_db, stream_id, http, budget_s=0)
    assert first.forwarded == logic.CLAIM  # one round, then the budget was spent
    assert await backlog(analytics_db, stream_id) == {"pending": 300, "dead": 0}
    rest = await streams.forward_stream(analytics_db, stream_id, http)
    assert rest.forwarded == 300
