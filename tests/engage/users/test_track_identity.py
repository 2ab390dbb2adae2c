"""Who a /users/track object is about, and when profiles are created (spec braze §3.3)."""

import httpx

from cohortbridge.db.engine import Database
from cohortbridge.engage.workspaces import service
from tests.engage.users.helpers import export, one, track

T = "2026-11-01T10:00:00Z"


async def test_unknown_external_id_creates_unless_update_existing_only(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await track(engage, auth, attributes=[
        {"external_id": "new", "a": 1},
        {"external_id": "skip", "a": 1, "_update_existing_only": True},
    ])  # fmt: skip
    found = await engage.post(
        "/users/export/ids", json={"external_ids": ["new", "skip"]}, headers=auth
    )
    body = found.json()
    assert [u["external_id"] for u in body["users"]] == ["new"]
    assert body["invalid_user_ids"] == ["skip"]


async def test_alias_objects_update_only_by_default(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    alias = {"alias_name": "amp-1", "alias_label": "amplitude_id"}
    response = await track(engage, auth, attributes=[{"user_alias": alias, "a": 1}])
    assert response.status_code == 201
    assert await export(engage, auth, user_aliases=[alias]) == []
    await track(
        engage, auth, attributes=[{"user_alias": alias, "a": 2, "_update_existing_only": False}]
    )
    users = await export(engage, auth, user_aliases=[alias])
    assert len(users) == 1
    assert users[0]["user_aliases"] == [alias]
    assert "external_id" not in users[0]
    # Now the alias exists, so later objects update it without the flag.
    await track(engage, auth, attributes=[{"user_alias": alias, "a": 3}])
    assert (await export(engage, auth, user_aliases=[alias]))[0]["custom_attributes"] == {"a": 3}


async def test_email_only_profiles_and_secondary_lookup(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await track(engage, auth, attributes=[{"email": "ann@example.com", "tier": "gold"}])
    users = await export(engage, auth, email_address="ann@example.com")
    assert len(users) == 1
    assert users[0]["email"] == "ann@example.com"
    assert "external_id" not in users[0]
    # A second object by email updates the same profile rather than creating one.
    await track(engage, auth, events=[{"email": "ann@example.com", "name": "e", "time": T}])
    users = await export(engage, auth, email_address="ann@example.com")
    assert users[0]["custom_events"][0]["count"] == 1


async def test_email_prefers_identified_profile(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await track(engage, auth, attributes=[{"email": "b@example.com", "where": "email-only"}])
    await track(
        engage, auth, attributes=[{"external_id": "bee", "email": "b@example.com", "where": "id"}]
    )
    await track(engage, auth, attributes=[{"email": "b@example.com", "hit": True}])
    assert (await one(engage, auth, "bee"))["custom_attributes"] == {"where": "id", "hit": True}


async def test_primary_id_with_email_sets_email_as_attribute(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await track(engage, auth, attributes=[{"external_id": "c", "email": "c@example.com"}])
    assert (await one(engage, auth, "c"))["email"] == "c@example.com"


async def test_braze_id_addresses_existing_profile_only(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await track(engage, auth, attributes=[{"external_id": "d"}])
    braze_id = (await one(engage, auth, "d"))["braze_id"]
    await track(engage, auth, attributes=[{"braze_id": braze_id, "via": "braze_id"}])
    assert (await one(engage, auth, "d"))["custom_attributes"] == {"via": "braze_id"}
    response = await track(engage, auth, attributes=[{"braze_id": "0" * 24, "x": 1}])
    assert response.status_code == 201


async def test_attributes_before_events_in_one_request(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    # The event's profile is created by the attributes object of the same request.
    response = await track(
        engage, auth,
        events=[{"external_id": "e", "name": "signup", "time": T, "_update_existing_only": True}],
        attributes=[{"external_id": "e", "plan": "free"}],
    )  # fmt: skip
    assert response.status_code == 201
    assert (await one(engage, auth, "e"))["custom_events"][0]["name"] == "signup"


async def test_workspaces_are_isolated(
    engage: httpx.AsyncClient, auth: dict[str, str], engage_db: Database
) -> None:
    async with engage_db.transaction() as conn:
        other = await service.bootstrap(conn, "Other", "http://x")
    other_auth = {"Authorization": f"Bearer {other.rest_api_key}"}
    await track(engage, auth, attributes=[{"external_id": "shared", "ws": "one"}])
    await track(engage, other_auth, attributes=[{"external_id": "shared", "ws": "two"}])
    assert (await one(engage, auth, "shared"))["custom_attributes"] == {"ws": "one"}
    assert (await one(engage, other_auth, "shared"))["custom_attributes"] == {"ws": "two"}
