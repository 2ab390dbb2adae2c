"""Identity resolution, user properties and the Identify API through the wire, stored and read
back (spec amplitude §2, §6.1, §6.2)."""

from __future__ import annotations

import json
from typing import Any

import httpx
from sqlalchemy import select

from cohortbridge.analytics.identity import repository as identities
from cohortbridge.analytics.identity.models import merges
from cohortbridge.analytics.ingest.models import events
from cohortbridge.analytics.projects import service as projects
from cohortbridge.db.engine import Database
from tests.analytics.test_ingest_wire import T, upload, user


async def stored(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(select(events).order_by(events.c.id))
        return [dict(row) for row in rows.mappings()]


async def test_anonymous_history_follows_the_first_login(
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any]
) -> None:
    await upload(analytics, project, [{"device_id": "phone-1", "event_type": "browse", "time": T}])
    await upload(analytics, project, [{"device_id": "phone-1", "user_id": "alice",
                                       "event_type": "login", "time": T + 1}],
                 options={"min_id_length": 1})  # fmt: skip
    await upload(
        analytics, project, [{"device_id": "phone-1", "event_type": "after", "time": T + 2}]
    )
    rows = await stored(analytics_db)
    assert len({row["amplitude_id"] for row in rows}) == 1  # rules 2 and 4
    alice = await user(analytics_db, project, user_id="alice")
    assert alice is not None
    assert alice["amplitude_id"] == rows[0]["amplitude_id"]


async def test_an_anonymous_user_merges_into_a_known_user(
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any]
) -> None:
    await upload(analytics, project, [{"user_id": "david-1", "device_id": "laptop-1",
                                       "event_type": "e", "time": T,
                                       "user_properties": {"plan": "pro"}}])  # fmt: skip
    await upload(analytics, project, [{"device_id": "tablet-z", "event_type": "anon", "time": T,
                                       "user_properties": {"theme": "dark", "plan": "free"}}])  # fmt: skip
    anonymous = await user(analytics_db, project, device_id="tablet-z")
    assert anonymous is not None
    await upload(analytics, project, [{"user_id": "david-1", "device_id": "tablet-z",
                                       "event_type": "login", "time": T + 5}])  # fmt: skip
    david = await user(analytics_db, project, user_id="david-1")
    assert david is not None
    assert {row["amplitude_id"] for row in await stored(analytics_db)} == {david["amplitude_id"]}
    # The known user's values win; the anonymous one's fill the gaps.
    assert david["user_properties"] == {"plan": "pro", "theme": "dark"}
    async with analytics_db.read() as conn:
        merged = (await conn.execute(select(merges))).mappings().all()
    assert [(m["merged_id"], m["into_id"]) for m in merged] == [
        (anonymous["amplitude_id"], david["amplitude_id"])
    ]
    # Anonymous events on that device now belong to david.
    await upload(analytics, project, [{"device_id": "tablet-z", "event_type": "later"}])
    assert (await user(analytics_db, project, device_id="tablet-z"))["user_id"] == "david-1"  # type: ignore[index]


async def test_user_ids_are_never_merged(
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any]
) -> None:
    await upload(analytics, project, [
        {"user_id": "user-one", "device_id": "shared-device", "event_type": "e"},
        {"user_id": "user-two", "device_id": "shared-device", "event_type": "e"},
        {"device_id": "shared-device", "event_type": "anonymous"},
    ])  # fmt: skip
    one = await user(analytics_db, project, user_id="user-one")
    two = await user(analytics_db, project, user_id="user-two")
    assert one is not None and two is not None
    assert one["amplitude_id"] != two["amplitude_id"]
    rows = await stored(analytics_db)
    assert rows[2]["amplitude_id"] == two["amplitude_id"]  # the device's last known user


async def test_events_are_stamped_with_the_properties_of_their_moment(
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any]
) -> None:
    await upload(analytics, project, [
        {"user_id": "props-user", "event_type": "$identify",
         "user_properties": {"$set": {"plan": "free"}, "$add": {"logins": 1}}},
        {"user_id": "props-user", "event_type": "played"},
        {"user_id": "props-user", "event_type": "$identify",
         "user_properties": {"$set": {"plan": "pro"}, "$add": {"logins": 2},
                             "$append": {"tags": "a"}, "$setOnce": {"first": "x"}}},
        {"user_id": "props-user", "event_type": "paid", "user_properties": {"country_code": "FR"}},
        {"user_id": "props-user", "event_type": "private", "$skip_user_properties_sync": True,
         "user_properties": {"only": "here"}},
    ])  # fmt: skip
    rows = await stored(analytics_db)
    assert rows[1]["user_properties"] == {"plan": "free", "logins": 1}
    assert rows[3]["user_properties"] == {"plan": "pro", "logins": 3, "tags": ["a"], "first": "x",
                                          "country_code": "FR"}  # fmt: skip
    assert rows[4]["user_properties"] == {"only": "here"}
    found = await user(analytics_db, project, user_id="props-user")
    assert found is not None
    assert "only" not in found["user_properties"]


async def test_inactive_event_types_do_not_make_users_active(
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any]
) -> None:
    async with analytics_db.transaction() as conn:
        await projects.set_event_activity(conn, project["project_id"], "Push Sent", False)
    await upload(analytics, project, [{"user_id": "passive-user", "event_type": "Push Sent",
                                       "time": T}])  # fmt: skip
    found = await user(analytics_db, project, user_id="passive-user")
    assert found is not None
    assert found["first_seen_at"] is not None
    assert found["last_active_at"] is None


async def test_identify_api_sets_properties_without_events(
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any]
) -> None:
    identification = [{"user_id": "ident-user", "user_properties": {"$set": {"plan": "pro"}},
                       "platform": "iOS", "os_name": "iOS", "country": "France", "city": "Paris"},
                      {"user_id": "ident-user", "country": "Spain"}]  # fmt: skip
    response = await analytics.post("/identify", data={
        "api_key": project["api_key"], "identification": json.dumps(identification),
    })  # fmt: skip
    assert (response.status_code, response.text) == (200, "success")
    assert await stored(analytics_db) == []
    found = await user(analytics_db, project, user_id="ident-user")
    assert found is not None
    assert found["user_properties"] == {"plan": "pro"}
    # Setting one location field resets the others; device fields stay.
    assert found["device_properties"] == {"platform": "iOS", "os_name": "iOS", "country": "Spain"}
    assert found["first_seen_at"] is None  # identify calls are not events
    single = await analytics.post("/identify", data={
        "api_key": project["api_key"],
        "identification": json.dumps({"device_id": "ident-device", "user_properties": {"a": 1}}),
    })  # fmt: skip
    assert single.status_code == 200
    bad = await analytics.post("/identify", data={"api_key": project["api_key"],
                                                  "identification": "{nope"})  # fmt: skip
    assert bad.status_code == 400
    wrong = await analytics.post("/identify", data={"api_key": "wrong", "identification": "{}"})
    assert wrong.json() == {"code": 400, "error": "Invalid API key: wrong"}


async def test_projects_never_see_each_others_users(
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any]
) -> None:
    async with analytics_db.transaction() as conn:
        other = (await projects.create_project(conn, "Other")).model_dump()
    await upload(analytics, project, [{"user_id": "same-user", "event_type": "e"}])
    await upload(analytics, other, [{"user_id": "same-user", "event_type": "e"}])
    mine = await user(analytics_db, project, user_id="same-user")
    theirs = await user(analytics_db, other, user_id="same-user")
    assert mine is not None and theirs is not None
    assert mine["amplitude_id"] != theirs["amplitude_id"]
    async with analytics_db.read() as conn:
        assert await identities.find_user(conn, other["project_id"], user_id=None,
                                          device_id="nobody") is None  # fmt: skip


async def test_a_merged_id_is_never_given_again(
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any]
) -> None:
    await upload(analytics, project, [{"user_id": "keeper-1", "device_id": "dev-keep",
                                       "event_type": "e"}])  # fmt: skip
    await upload(analytics, project, [{"device_id": "dev-anon-last", "event_type": "e"}])
    anonymous = await user(analytics_db, project, device_id="dev-anon-last")
    await upload(analytics, project, [{"user_id": "keeper-1", "device_id": "dev-anon-last",
                                       "event_type": "login"}])  # fmt: skip
    await upload(analytics, project, [{"user_id": "newcomer", "event_type": "e"}])
    newcomer = await user(analytics_db, project, user_id="newcomer")
    assert anonymous is not None and newcomer is not None
    assert newcomer["amplitude_id"] > anonymous["amplitude_id"]
