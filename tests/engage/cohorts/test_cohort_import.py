"""POST /partners/{partner}/cohorts[/users] as spec braze §1.5–§1.8 describes them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from cohortbridge.config import RateLimits
from cohortbridge.db.engine import Database
from cohortbridge.engage.app import create_app
from cohortbridge.engage.cohorts import service as cohorts
from cohortbridge.engage.datapoints import service as datapoints
from cohortbridge.engage.partners import service as partners
from tests.engage.cohorts.conftest import Post
from tests.engage.users.helpers import export, track

CHANGES_INVALID = (
    "cohort_changes must be an array of objects each with key user_ids and/or device_ids "
    "mapping to an array of strings, or an aliases object"
)
Members = Callable[[str], Awaitable[list[Any]]]


async def make_users(engage: httpx.AsyncClient, auth: dict[str, str], *ids: str) -> None:
    response = await track(engage, auth, attributes=[{"external_id": i} for i in ids])
    assert response.status_code == 201


async def test_segment_client_shapes(
    engage: httpx.AsyncClient, auth: dict[str, str], post_users: Post, members: Members
) -> None:
    await make_users(engage, auth, "a", "b", "c")
    # The credential check Segment's client runs: an empty change list succeeds.
    check = await post_users("will_add_in_constant", [])
    assert check.status_code == 201
    assert check.json()["message"] == "success"
    added = await post_users("aud_1", [
        {"user_ids": ["a", "b", "ghost"], "device_ids": [], "aliases": []},
        {"user_ids": [], "device_ids": [], "aliases": [], "should_remove": True},
    ])  # fmt: skip
    assert added.status_code == 201
    assert added.json() == {"message": "success", "cohort_id": "aud_1", "matched": 2,
                            "unmatched": 1, "users_added": 2, "users_removed": 0}  # fmt: skip
    changed = await post_users("aud_1", [
        {"user_ids": ["c"], "device_ids": [], "aliases": []},
        {"user_ids": ["a"], "device_ids": [], "aliases": [], "should_remove": True},
    ])  # fmt: skip
    assert changed.json()["users_added"] == 1
    assert changed.json()["users_removed"] == 1
    assert await members("aud_1") == ["b", "c"]
    assert await members("will_add_in_constant") == []


async def test_cohort_import_never_creates_users(
    engage: httpx.AsyncClient, auth: dict[str, str], post_users: Post, members: Members
) -> None:
    response = await post_users("c1", [{"user_ids": ["nobody"], "device_ids": ["dev-nobody"],
                                        "aliases": [{"alias_name": "n", "alias_label": "l"}]}])  # fmt: skip
    assert response.json()["unmatched"] == 3
    assert await export(engage, auth, external_ids=["nobody"]) == []
    assert await members("c1") == []


async def test_order_of_change_objects_and_idempotence(
    engage: httpx.AsyncClient, auth: dict[str, str], post_users: Post, members: Members
) -> None:
    await make_users(engage, auth, "x", "y")
    response = await post_users("c1", [
        {"user_ids": ["x", "y"]},
        {"user_ids": ["x"], "should_remove": True},
        {"user_ids": ["y"]},  # already being added: a no-op
    ])  # fmt: skip
    assert response.json()["users_added"] == 1
    assert await members("c1") == ["y"]
    again = await post_users(
        "c1", [{"user_ids": ["y"]}, {"user_ids": ["x"], "should_remove": True}]
    )
    assert again.json()["users_added"] == again.json()["users_removed"] == 0


async def test_aliases_match(
    engage: httpx.AsyncClient, auth: dict[str, str], post_users: Post, members: Members
) -> None:
    alias = {"alias_name": "amp-9", "alias_label": "amplitude_id"}
    await track(engage, auth, attributes=[{"user_alias": alias, "_update_existing_only": False}])
    await post_users("c1", [{"aliases": [alias]}])
    assert await members("c1") == [None]


async def test_device_ids_match_only_anonymous_profiles(
    engage: httpx.AsyncClient,
    auth: dict[str, str],
    workspace: dict[str, Any],
    post_users: Post,
    members: Members,
) -> None:
    app_id = workspace["app_id"]
    await track(engage, auth, attributes=[
        {"push_token_import": True, "push_tokens": [{"app_id": app_id, "token": "t1", "device_id": "anon-device-1"}]},
        {"external_id": "known", "push_tokens": [{"app_id": app_id, "token": "t2", "device_id": "known-device-1"}]},
    ])  # fmt: skip
    response = await post_users("c1", [{"device_ids": ["anon-device-1", "known-device-1"]}])
    assert response.json()["matched"] == 1
    assert await members("c1") == [None]
    # An identified user is neither added nor removed by device id.
    await post_users("c1", [{"user_ids": ["known"]}])
    await post_users("c1", [{"device_ids": ["known-device-1"], "should_remove": True}])
    assert await members("c1") == ["known", None]


async def test_one_request_applies_whole_or_not_at_all(
    engage: httpx.AsyncClient, auth: dict[str, str], post_users: Post, members: Members
) -> None:
    await make_users(engage, auth, "p", "q")
    bad = await post_users("c1", [{"user_ids": ["p"]}, {"user_ids": "q"}])
    assert bad.status_code == 400
    assert bad.json() == {"message": CHANGES_INVALID}
    assert await members("c1") == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"cohort_id": 5}, "cohort_id must be a valid string"),
        ({"cohort_id": ""}, "cohort_id must be a valid string"),
        ({"cohort_changes": "x"}, CHANGES_INVALID),
        ({"cohort_changes": [{}]}, CHANGES_INVALID),
        ({"cohort_changes": [{"user_ids": [1]}]}, CHANGES_INVALID),
        ({"cohort_changes": [{"aliases": [{"alias_name": "n"}]}]}, CHANGES_INVALID),
        ({"cohort_changes": [{"user_ids": ["a"], "should_remove": "yes"}]}, CHANGES_INVALID),
        ({"cohort_changes": [{"user_ids": [f"u{i}" for i in range(600)],
                              "device_ids": [f"d{i}" for i in range(401)]}]},
         "Only 1,000 user_ids, device_ids, and aliases are allowed per request"),
    ],
)  # fmt: skip
async def test_users_endpoint_400s(post_users: Post, body: dict[str, Any], message: str) -> None:
    response = await post_users(**body)
    assert response.status_code == 400
    assert response.json() == {"message": message}


async def test_exactly_1000_ids_is_accepted(post_users: Post) -> None:
    response = await post_users("c1", [{"user_ids": [f"u{i}" for i in range(1000)]}])
    assert response.status_code == 201
    assert response.json()["unmatched"] == 1000


async def test_credentials_are_checked_before_the_body(
    engage: httpx.AsyncClient, keys: dict[str, str], engage_db: Database, workspace: dict[str, Any]
) -> None:
    async def post(partner: str = "amplitude", **body: Any) -> httpx.Response:
        return await engage.post(f"/partners/{partner}/cohorts/users", json=body)

    bad_body: dict[str, Any] = {"cohort_id": 5, "cohort_changes": "nonsense"}
    cases = [
        (
            {"partner_api_key": "nope", "client_secret": keys["client_secret"]},
            "Invalid Partner API key",
        ),
        ({"client_secret": keys["client_secret"]}, "Invalid Partner API key"),
        (
            {"partner_api_key": keys["partner_api_key"], "client_secret": "nope"},
            "Invalid client secret",
        ),
        ({"partner_api_key": keys["partner_api_key"]}, "Invalid client secret"),
    ]
    for creds, message in cases:
        response = await post(**creds, **bad_body)
        assert response.status_code == 401
        assert response.json() == {"message": message}
    # The slug must belong to the partner key.
    async with engage_db.transaction() as conn:
        other = await partners.create_partner_key(conn, "mixpanel")
        mix_secret = await partners.create_import_key(
            conn, workspace["workspace_id"], "mixpanel", "x"
        )
    wrong_slug = await post("mixpanel", partner_api_key=keys["partner_api_key"],
                            client_secret=keys["client_secret"], **bad_body)  # fmt: skip
    assert (wrong_slug.status_code, wrong_slug.json()) == (401, {"message": "Unauthorized access"})
    not_enabled = await post("mixpanel", partner_api_key=other.partner_api_key,
                             client_secret=keys["client_secret"], **bad_body)  # fmt: skip
    assert not_enabled.status_code == 401
    assert not_enabled.json() == {
        "message": f"Partner not enabled for client with client secret: {keys['client_secret']}"
    }
    ok = await post("mixpanel", partner_api_key=other.partner_api_key,
                    client_secret=mix_secret.data_import_key, cohort_id="m", cohort_changes=[])  # fmt: skip
    assert ok.status_code == 201


async def test_invalidated_key_is_refused_at_once(
    post_users: Post, keys: dict[str, str], engage_db: Database, workspace: dict[str, Any]
) -> None:
    assert (await post_users()).status_code == 201
    async with engage_db.transaction() as conn:
        await partners.invalidate_import_key(
            conn, workspace["workspace_id"], "amplitude", keys["key_id"]
        )
    refused = await post_users()
    assert refused.status_code == 401
    assert refused.json() == {"message": "Invalid client secret"}


async def test_name_endpoint_and_titles(
    engage: httpx.AsyncClient,
    auth: dict[str, str],
    keys: dict[str, str],
    post_users: Post,
    engage_db: Database,
    workspace: dict[str, Any],
) -> None:
    await make_users(engage, auth, "n1")
    # Users may arrive before the name.
    await post_users("abcd1234", [{"user_ids": ["n1"]}])
    creds = {"partner_api_key": keys["partner_api_key"], "client_secret": keys["client_secret"]}
    for name in ("TEST_COHORT", "RENAMED"):
        response = await engage.post("/partners/amplitude/cohorts", json={
            **creds, "cohort_id": "abcd1234", "name": name, "created_at": "2021-01-21T19:20:30+05:00",
        })  # fmt: skip
        assert (response.status_code, response.json()) == (201, {"message": "success"})
    async with engage_db.read() as conn:
        listed = await cohorts.list_cohorts(conn, workspace["workspace_id"])
    assert [(c.title, c.size, c.name) for c in listed] == [
        ("[Amplitude] RENAMED: abcd1234", 1, "RENAMED")
    ]
    assert listed[0].created_at.isoformat() == "2021-01-21T14:20:30+00:00"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"cohort_id": None, "name": "n", "created_at": "2021-01-21T19:20:30Z"}, "cohort_id must be a valid string"),
        ({"cohort_id": "c", "name": "", "created_at": "2021-01-21T19:20:30Z"}, "name must be a non-empty string"),
        ({"cohort_id": "c", "name": "n", "created_at": "yesterday"}, "created_at must be a valid time as an ISO-8601 string"),
        ({"cohort_id": "c", "name": "n"}, "created_at must be a valid time as an ISO-8601 string"),
    ],
)  # fmt: skip
async def test_name_endpoint_400s(
    engage: httpx.AsyncClient, keys: dict[str, str], body: dict[str, Any], message: str
) -> None:
    creds = {"partner_api_key": keys["partner_api_key"], "client_secret": keys["client_secret"]}
    response = await engage.post("/partners/amplitude/cohorts", json={**creds, **body})
    assert (response.status_code, response.json()) == (400, {"message": message})


async def test_each_matched_assignment_is_a_data_point(
    engage: httpx.AsyncClient,
    auth: dict[str, str],
    post_users: Post,
    engage_db: Database,
    workspace: dict[str, Any],
) -> None:
    await make_users(engage, auth, "d1", "d2")
    async with engage_db.read() as conn:
        before = (await datapoints.report(conn, workspace["workspace_id"]))["by_source"]
    await post_users("c1", [{"user_ids": ["d1", "d2", "nobody"]}])
    await post_users("c1", [{"user_ids": ["d1"], "should_remove": True}])
    async with engage_db.read() as conn:
        after = (await datapoints.report(conn, workspace["workspace_id"]))["by_source"]
    assert after["cohort_import:amplitude"] == 3
    assert after.get("users_track:bootstrap") == before.get("users_track:bootstrap")


async def test_parallel_requests_on_one_cohort_lose_nothing(
    engage: httpx.AsyncClient, auth: dict[str, str], post_users: Post, members: Members
) -> None:
    ids = [f"par-{i}" for i in range(200)]
    for start in range(0, len(ids), 75):
        await make_users(engage, auth, *ids[start : start + 75])
    batches = [ids[i::4] for i in range(4)]

    async def client(batch: list[str]) -> None:
        for start in range(0, len(batch), 10):
            response = await post_users("shared", [{"user_ids": batch[start : start + 10]}])
            assert response.status_code == 201

    await asyncio.gather(*(client(b) for b in batches))
    assert await members("shared") == sorted(ids)


async def test_device_rule_before_and_after_identify(
    engage: httpx.AsyncClient,
    auth: dict[str, str],
    workspace: dict[str, Any],
    post_users: Post,
    members: Members,
) -> None:
    alias = {"alias_name": "phone-1", "alias_label": "device_owner"}
    token = {"app_id": workspace["app_id"], "token": "t", "device_id": "dev-identify-1"}
    await track(
        engage,
        auth,
        attributes=[{"push_token_import": True, "push_tokens": [token], "user_alias": alias}],
    )
    assert (await post_users("c1", [{"device_ids": ["dev-identify-1"]}])).json()["users_added"] == 1
    identified = await engage.post("/users/identify", headers=auth, json={
        "aliases_to_identify": [{"external_id": "now-known", "user_alias": alias}]})  # fmt: skip
    assert identified.status_code == 201
    # Created anonymous, later identified: no longer matched by device id, either way.
    removal = await post_users("c1", [{"device_ids": ["dev-identify-1"], "should_remove": True}])
    assert removal.json()["matched"] == 0
    assert await members("c1") == ["now-known"]
    readd = await post_users("c2", [{"device_ids": ["dev-identify-1"]}])
    assert readd.json()["unmatched"] == 1


async def test_delete_and_merge_carry_memberships(
    engage: httpx.AsyncClient,
    auth: dict[str, str],
    post_users: Post,
    members: Members,
    engage_db: Database,
    workspace: dict[str, Any],
) -> None:
    await make_users(engage, auth, "m-old", "m-keep", "m-gone")
    await post_users("c1", [{"user_ids": ["m-old", "m-gone"]}])
    await engage.post("/users/merge", headers=auth, json={"merge_updates": [
        {"identifier_to_merge": {"external_id": "m-old"}, "identifier_to_keep": {"external_id": "m-keep"}}]})  # fmt: skip
    await engage.post("/users/delete", headers=auth, json={"external_ids": ["m-gone"]})
    assert await members("c1") == ["m-keep"]
    async with engage_db.read() as conn:
        listed = await cohorts.list_cohorts(conn, workspace["workspace_id"])
    assert [c.size for c in listed] == [1]


async def test_amplitude_request_shapes(
    engage: httpx.AsyncClient,
    auth: dict[str, str],
    keys: dict[str, str],
    workspace: dict[str, Any],
    post_users: Post,
    members: Members,
    engage_db: Database,
) -> None:
    alias = {"alias_name": "a1", "alias_label": "amp_label"}
    token = {"app_id": workspace["app_id"], "token": "t", "device_id": "device_1"}
    await make_users(engage, auth, "ext_1", "ext_2", "ext_3")
    await track(engage, auth, attributes=[
        {"user_alias": alias, "_update_existing_only": False},
        {"push_token_import": True, "push_tokens": [token]},
    ])  # fmt: skip
    creds = {"partner_api_key": keys["partner_api_key"], "client_secret": keys["client_secret"]}
    named = await engage.post("/partners/amplitude/cohorts", json={
        **creds, "cohort_id": "abcd1234", "name": "[Amplitude] TEST_COHORT: abcd1234",
        "created_at": "2021-01-21T19:20:30+05:00"})  # fmt: skip
    assert named.status_code == 201
    await post_users("abcd1234", [{"user_ids": ["ext_3"]}])
    response = await post_users("abcd1234", [
        {"user_ids": ["ext_1", "ext_2"], "device_ids": ["device_1"], "aliases": [alias]},
        {"user_ids": ["ext_3"], "should_remove": True},
    ])  # fmt: skip
    assert response.json() == {"message": "success", "cohort_id": "abcd1234", "matched": 5,
                               "unmatched": 0, "users_added": 4, "users_removed": 1}  # fmt: skip
    assert await members("abcd1234") == ["ext_1", "ext_2", None, None]
    async with engage_db.read() as conn:
        listed = await cohorts.list_cohorts(conn, workspace["workspace_id"])
    assert [c.title for c in listed] == ["[Amplitude] TEST_COHORT: abcd1234"]


async def test_rate_limit_per_workspace(
    engage_db: Database, settings: Any, keys: dict[str, str]
) -> None:
    limited = settings.model_copy(update={"rate_limits": RateLimits(cohort_import=1)})
    transport = httpx.ASGITransport(app=create_app(limited, engage_db))
    body = {"partner_api_key": keys["partner_api_key"], "client_secret": keys["client_secret"],
            "cohort_id": "c", "cohort_changes": []}  # fmt: skip
    async with httpx.AsyncClient(transport=transport, base_url="http://e") as client:
        first = await client.post("/partners/amplitude/cohorts/users", json=body)
        second = await client.post("/partners/amplitude/cohorts/users", json=body)
    assert first.status_code == 201
    assert (second.status_code, second.json()) == (429, {"message": "Rate Limited"})
    assert second.headers["X-RateLimit-Remaining"] == "0"


async def test_device_rule_with_sdk_sessions(
    engage: httpx.AsyncClient, workspace: dict[str, Any], post_users: Post, members: Members
) -> None:
    await engage.post(
        "/sdk/sessions", json={"app_id": workspace["app_id"], "device_id": "sdk-dev-1"}
    )
    assert (await post_users("c1", [{"device_ids": ["sdk-dev-1"]}])).json()["users_added"] == 1
    await engage.post("/sdk/sessions", json={"app_id": workspace["app_id"], "device_id": "sdk-dev-1",
                                             "external_id": "erin"})  # fmt: skip
    assert await members("c1") == ["erin"]
    assert (await post_users("c2", [{"device_ids": ["sdk-dev-1"]}])).json()["unmatched"] == 1
