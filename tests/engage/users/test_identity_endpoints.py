"""/users/alias/new, /alias/update, /identify, /merge and /delete (spec braze §3.6–§3.10, §4)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cohortbridge.db.engine import Database
from cohortbridge.engage.workspaces import service as workspaces
from tests.engage.users.helpers import export, one, track

T = "2026-11-01T10:00:00Z"
ALIAS = {"alias_name": "amp-1", "alias_label": "amplitude_id"}


async def post(
    client: httpx.AsyncClient, auth: dict[str, str], path: str, body: Any
) -> httpx.Response:
    return await client.post(path, json=body, headers=auth)


async def test_alias_new(engage: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await track(engage, auth, attributes=[{"external_id": "known"}])
    response = await post(engage, auth, "/users/alias/new", {"user_aliases": [
        {"external_id": "known", "alias_name": "k1", "alias_label": "crm"},
        {"external_id": "unknown", "alias_name": "u1", "alias_label": "crm"},
        {"alias_name": "anon-1", "alias_label": "crm"},
        {"alias_name": "k1", "alias_label": "crm"},  # taken: not applied
    ]})  # fmt: skip
    assert (response.status_code, response.json()) == (
        201,
        {"aliases_processed": 2, "message": "success"},
    )
    assert (await one(engage, auth, "known"))["user_aliases"] == [
        {"alias_name": "k1", "alias_label": "crm"}
    ]
    anon = await export(engage, auth, user_aliases=[{"alias_name": "anon-1", "alias_label": "crm"}])
    assert len(anon) == 1 and "external_id" not in anon[0]
    assert (
        await export(engage, auth, user_aliases=[{"alias_name": "u1", "alias_label": "crm"}]) == []
    )


async def test_alias_update(engage: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await post(engage, auth, "/users/alias/new", {"user_aliases": [
        {"alias_name": "a", "alias_label": "l"}, {"alias_name": "b", "alias_label": "l"}]})  # fmt: skip
    response = await post(engage, auth, "/users/alias/update", {"alias_updates": [
        {"alias_label": "l", "old_alias_name": "a", "new_alias_name": "c"},
        {"alias_label": "l", "old_alias_name": "missing", "new_alias_name": "d"},
        {"alias_label": "l", "old_alias_name": "b", "new_alias_name": "c"},  # taken now
    ]})  # fmt: skip
    assert response.json() == {"aliases_processed": 1, "message": "success"}
    assert (
        len(await export(engage, auth, user_aliases=[{"alias_name": "c", "alias_label": "l"}])) == 1
    )
    assert (
        len(await export(engage, auth, user_aliases=[{"alias_name": "b", "alias_label": "l"}])) == 1
    )


async def test_identify_alias_only_profile_with_new_external_id(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await track(
        engage,
        auth,
        attributes=[{"user_alias": ALIAS, "_update_existing_only": False, "plan": "free"}],
    )
    before = (await export(engage, auth, user_aliases=[ALIAS]))[0]
    response = await post(engage, auth, "/users/identify",
                          {"aliases_to_identify": [{"external_id": "new-id", "user_alias": ALIAS}]})  # fmt: skip
    assert (response.status_code, response.json()) == (
        201,
        {"aliases_processed": 1, "message": "success"},
    )
    after = await one(engage, auth, "new-id")
    assert after["braze_id"] == before["braze_id"]
    assert after["custom_attributes"] == {"plan": "free"}
    assert after["user_aliases"] == [ALIAS]


async def test_identify_into_existing_profile_merges(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await track(engage, auth,
        attributes=[{"user_alias": ALIAS, "_update_existing_only": False, "first_name": "Anon",
                     "last_name": "Only", "color": "red", "size": 1},
                    {"external_id": "u", "first_name": "Known", "size": 2}],
        events=[{"user_alias": ALIAS, "name": "play", "time": "2026-10-01T00:00:00Z"},
                {"external_id": "u", "name": "play", "time": T}],
        purchases=[{"user_alias": ALIAS, "product_id": "p", "currency": "USD", "price": 2, "time": T}],
    )  # fmt: skip
    anonymous = (await export(engage, auth, user_aliases=[ALIAS]))[0]
    await post(
        engage,
        auth,
        "/users/identify",
        {"aliases_to_identify": [{"external_id": "u", "user_alias": ALIAS}]},
    )
    user = await one(engage, auth, "u")
    assert user["first_name"] == "Known"  # the identified profile's values win
    assert user["last_name"] == "Only"  # missing fields come from the anonymous one
    assert user["custom_attributes"] == {"color": "red", "size": 2}
    assert user["custom_events"] == [{"name": "play", "first": "2026-10-01T00:00:00.000Z",
                                      "last": "2026-11-01T10:00:00.000Z", "count": 2}]  # fmt: skip
    assert user["purchases"][0]["count"] == 1
    assert user["total_revenue"] == 2.0
    assert user["user_aliases"] == [ALIAS]
    assert await export(engage, auth, braze_id=anonymous["braze_id"]) == []


async def test_identify_is_refused_when_both_have_the_label(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    other = {"alias_name": "amp-2", "alias_label": "amplitude_id"}
    await track(engage, auth, attributes=[{"user_alias": ALIAS, "_update_existing_only": False},
                                          {"external_id": "u2"}])  # fmt: skip
    await post(engage, auth, "/users/alias/new", {"user_aliases": [{"external_id": "u2", **other}]})
    await post(
        engage,
        auth,
        "/users/identify",
        {"aliases_to_identify": [{"external_id": "u2", "user_alias": ALIAS}]},
    )
    assert len(await export(engage, auth, user_aliases=[ALIAS])) == 1  # still its own profile
    assert (await one(engage, auth, "u2"))["user_aliases"] == [other]


async def test_identify_by_email_with_prioritization(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await track(engage, auth, attributes=[{"email": "e@example.com", "from": "email-only"}])
    response = await post(engage, auth, "/users/identify", {"emails_to_identify": [
        {"external_id": "by-mail", "email": "e@example.com", "prioritization": ["unidentified", "most_recently_updated"]}
    ]})  # fmt: skip
    assert response.json()["aliases_processed"] == 1
    assert (await one(engage, auth, "by-mail"))["custom_attributes"] == {"from": "email-only"}
    bad = await post(engage, auth, "/users/identify", {"emails_to_identify": [
        {"external_id": "x", "email": "e@example.com", "prioritization": ["identified", "unidentified"]}
    ]})  # fmt: skip
    assert bad.json()["errors"][0]["input_array"] == "emails_to_identify"


async def test_merge(engage: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await track(
        engage,
        auth,
        attributes=[{"external_id": "old", "a": 1, "b": 1}, {"external_id": "cur", "b": 2}],
    )
    response = await post(engage, auth, "/users/merge", {"merge_updates": [
        {"identifier_to_merge": {"external_id": "old"}, "identifier_to_keep": {"external_id": "cur"}}]})  # fmt: skip
    assert (response.status_code, response.json()) == (202, {"message": "success"})
    assert (await one(engage, auth, "cur"))["custom_attributes"] == {"a": 1, "b": 2}
    assert await export(engage, auth, external_ids=["old"]) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"merge_updates": "x"}, "'merge_updates' must be an array of objects"),
        ({"merge_updates": [{"identifier_to_merge": {"external_id": "a"},
                             "identifier_to_keep": {"external_id": "b"}}] * 51},
         "a single request may not contain more than 50 merge updates"),
        ({"merge_updates": [{"identifier_to_merge": {"external_id": "a"}}]},
         "'merge_updates' must only have 'identifier_to_merge' and 'identifier_to_keep'"),
        ({"merge_updates": [{"identifier_to_merge": {"external_id": 5},
                             "identifier_to_keep": {"external_id": "b"}}]},
         "identifiers must be objects with an 'external_id' property that is a string, 'user_alias' "
         "property that is an object, 'email' property that is a string, or 'phone' property that "
         "is a string"),
    ],
)  # fmt: skip
async def test_merge_errors(
    engage: httpx.AsyncClient, auth: dict[str, str], body: Any, message: str
) -> None:
    response = await post(engage, auth, "/users/merge", body)
    assert (response.status_code, response.json()) == (400, {"message": message})


async def test_delete_by_every_identifier(engage: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await track(engage, auth, attributes=[
        {"external_id": "d1"}, {"external_id": "d2"}, {"external_id": "keep"},
        {"user_alias": ALIAS, "_update_existing_only": False}, {"email": "gone@example.com"},
    ])  # fmt: skip
    braze_id = (await one(engage, auth, "d2"))["braze_id"]
    response = await post(engage, auth, "/users/delete", {
        "external_ids": ["d1", "nobody"], "braze_ids": [braze_id], "user_aliases": [ALIAS],
        "email_addresses": [{"email": "gone@example.com", "prioritization": ["unidentified"]}],
    })  # fmt: skip
    assert (response.status_code, response.json()) == (202, {"deleted": 4, "message": "success"})
    assert [
        u["external_id"] for u in await export(engage, auth, external_ids=["d1", "d2", "keep"])
    ] == ["keep"]
    too_many = await post(
        engage, auth, "/users/delete", {"external_ids": [f"x{i}" for i in range(51)]}
    )
    assert (too_many.status_code, too_many.json()) == (
        400,
        {"message": "a single request may not contain more than 50 identifiers"},
    )


async def test_identity_endpoints_need_their_permission(
    engage: httpx.AsyncClient, engage_db: Database, workspace: dict[str, Any]
) -> None:
    async with engage_db.transaction() as conn:
        key = await workspaces.create_api_key(conn, workspace["workspace_id"], ["users.track"])
    headers = {"Authorization": f"Bearer {key.rest_api_key}"}
    for path in (
        "/users/alias/new",
        "/users/alias/update",
        "/users/identify",
        "/users/merge",
        "/users/delete",
    ):
        response = await engage.post(path, json={}, headers=headers)
        assert (response.status_code, response.json()) == (403, {"message": "Access Denied"})
