"""The segment API: our definition endpoints and Braze's /segments/list and /segments/details."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cohortbridge.db.engine import Database
from cohortbridge.engage.partners import service as partners
from cohortbridge.engage.workspaces import service as workspaces
from tests.engage.segments.helpers import attribute
from tests.engage.users.helpers import track

BLUE = attribute("eye", "equals", "blue")
COHORT = {"amplitude_cohorts": {"comparison": "includes_value", "value": "c1"}}


async def create(
    engage: httpx.AsyncClient, auth: dict[str, str], name: str = "Blue eyes", **body: Any
) -> str:
    response = await engage.post(
        "/segments/create", json={"name": name, "filter": BLUE, **body}, headers=auth
    )
    assert response.status_code == 201, response.text
    assert response.json()["message"] == "success"
    segment_id: str = response.json()["segment_id"]
    return segment_id


async def test_create_get_size_and_details(engage: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await track(engage, auth, attributes=[{"external_id": "a", "eye": "blue"},
                                          {"external_id": "b", "eye": "brown"}])  # fmt: skip
    definition = {"AND": [BLUE, {"NOT": COHORT}]}
    segment_id = await create(engage, auth, filter=definition, tags=["t1"], description="why")
    got = await engage.get("/segments/get", params={"segment_id": segment_id}, headers=auth)
    assert got.status_code == 200
    segment = got.json()["segment"]
    assert segment["filter"] == definition
    assert segment["tags"] == ["t1"]
    assert segment["archived"] is False
    assert segment["description"] == (
        'eye equals "blue" AND NOT Amplitude Cohorts includes "[Amplitude] c1"'
    )
    size = await engage.get("/segments/size", params={"segment_id": segment_id}, headers=auth)
    assert size.json() == {"message": "success", "segment_id": segment_id, "size": 1}
    details = await engage.get("/segments/details", params={"segment_id": segment_id},
                               headers=auth)  # fmt: skip
    assert details.status_code == 200
    body = details.json()
    assert set(body) == {"message", "created_at", "updated_at", "name", "description",
                         "text_description", "tags", "teams"}  # fmt: skip
    assert body["name"] == "Blue eyes"
    assert body["text_description"] == "why"
    assert body["created_at"].endswith("Z")


async def test_description_names_cohorts_by_their_title(
    engage: httpx.AsyncClient, auth: dict[str, str], engage_db: Database,
    workspace: dict[str, Any],
) -> None:  # fmt: skip
    async with engage_db.transaction() as conn:
        partner = await partners.create_partner_key(conn, "amplitude")
        secret = await partners.create_import_key(
            conn, workspace["workspace_id"], "amplitude", "http://engage.test"
        )
    named = await engage.post("/partners/amplitude/cohorts", json={
        "partner_api_key": partner.partner_api_key, "client_secret": secret.data_import_key,
        "cohort_id": "c1", "name": "Power users", "created_at": "2026-11-01T00:00:00Z",
    })  # fmt: skip
    assert named.status_code == 201, named.text
    segment_id = await create(engage, auth, filter=COHORT)
    details = await engage.get("/segments/details", params={"segment_id": segment_id},
                               headers=auth)  # fmt: skip
    assert details.json()["description"] == (
        'Amplitude Cohorts includes "[Amplitude] Power users: c1"'
    )


INVALID = [
    ({"AND": [{"custom_attribute": {"custom_attribute_name": "x", "comparison": "eq"}}]},
     "filter.AND[0].custom_attribute.comparison"),
    ({"OR": []}, "filter.OR"),
    ({"NOT": [BLUE]}, "filter.NOT"),
    ({"AND": [BLUE], "OR": [BLUE]}, "filter"),
    ({"shoe_size": {}}, "filter.shoe_size"),
    ({"custom_event": {"event_name": "e", "comparison": "more_than", "value": 1, "days": 31}},
     "filter.custom_event.days"),
    ({"custom_event": {"event_name": "e", "comparison": "more_than", "value": 51, "days": 3}},
     "filter.custom_event.value"),
    ({"custom_event": {"comparison": "more_than", "value": 1}}, "filter.custom_event.event_name"),
    ({"custom_attribute": {"custom_attribute_name": "x", "comparison": "matches_regex",
                           "value": "("}}, "filter.custom_attribute.value"),
    ({"custom_attribute": {"custom_attribute_name": "x", "comparison": "greater_than",
                           "value": "a"}}, "filter.custom_attribute.value"),
    ({"custom_attribute": {"custom_attribute_name": "x", "comparison": "after",
                           "value": "soon"}}, "filter.custom_attribute.value"),
    ({"amplitude_cohorts": {"comparison": "includes", "value": "c1"}},
     "filter.amplitude_cohorts.comparison"),
    ({"amplitude_cohorts": {"comparison": "includes_value", "value": "c1", "x": 1}},
     "filter.amplitude_cohorts.x"),
    ({"random_bucket": {"comparison": "less_than", "value": 10000}}, "filter.random_bucket.value"),
    ({"email_subscription_status": {"comparison": "is", "value": "yes"}},
     "filter.email_subscription_status.value"),
    ("blue", "filter"),
]  # fmt: skip


@pytest.mark.parametrize(("definition", "path"), INVALID)
async def test_a_bad_definition_is_400_naming_the_path(
    engage: httpx.AsyncClient, auth: dict[str, str], definition: Any, path: str
) -> None:
    response = await engage.post(
        "/segments/create", json={"name": "n", "filter": definition}, headers=auth
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["message"].startswith(f"Invalid filter at {path}: ")
    assert body["errors"][0]["path"] == path
    listed = await engage.get("/segments/list", headers=auth)
    assert listed.json()["segments"] == []


def _nest(depth: int) -> Any:
    node: Any = BLUE
    for _ in range(depth):
        node = {"NOT": node}
    return node


async def test_depth_and_size_are_bounded(engage: httpx.AsyncClient, auth: dict[str, str]) -> None:
    deep = await engage.post("/segments/create", json={"name": "n", "filter": _nest(40)},
                             headers=auth)  # fmt: skip
    assert deep.status_code == 400
    assert "nest at most" in deep.json()["message"]
    wide = await engage.post("/segments/create", json={"name": "n", "filter": {"OR": [BLUE] * 600}},
                             headers=auth)  # fmt: skip
    assert "at most 500 filters" in wide.json()["message"]


@pytest.mark.parametrize(("body", "message"), [
    ({"filter": BLUE}, "'name' must be a non-empty string of at most 255 characters"),
    ({"name": "n"}, "'filter' is required: a segment definition in Braze's filter vocabulary"),
    ({"name": "n", "filter": BLUE, "tags": "x"}, "'tags' must be an array of at most 100 "
     "non-empty strings"),
    ({"name": "n", "filter": {"partner_cohorts": {"partner": "nobody", "comparison":
      "includes_value", "value": "c"}}}, "Invalid filter at filter.partner_cohorts: "
     "unknown partner 'nobody' (see `engage partners`)"),
    ({"name": "n", "filter": {"segment_membership": {"comparison": "includes_value",
                                                     "value": "nope"}}},
     "Invalid filter at filter.segment_membership.value: unknown segment 'nope'"),
])  # fmt: skip
async def test_bad_create_bodies(
    engage: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any], message: str
) -> None:
    response = await engage.post("/segments/create", json=body, headers=auth)
    assert response.status_code == 400
    assert response.json()["message"] == message


def _member_of(segment_id: str, include: bool = True) -> dict[str, Any]:
    comparison = "includes_value" if include else "excludes_value"
    return {"segment_membership": {"comparison": comparison, "value": segment_id}}


async def test_segment_membership_does_not_nest(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await track(engage, auth, attributes=[{"external_id": "a", "eye": "blue"},
                                          {"external_id": "b", "eye": "grey"}])  # fmt: skip
    base = await create(engage, auth, "base")
    uses = await create(engage, auth, "uses", filter=_member_of(base, include=False))
    size = await engage.get("/segments/size", params={"segment_id": uses}, headers=auth)
    assert size.json()["size"] == 1
    # A segment that uses Segment Membership cannot be named by another …
    nested = await engage.post("/segments/create", json={"name": "n", "filter": _member_of(uses)},
                               headers=auth)  # fmt: skip
    assert nested.status_code == 400
    assert "uses segment_membership itself" in nested.json()["message"]
    # … so naming one back is refused, which rules out cycles …
    cycle = await engage.post("/segments/update", json={"segment_id": base,
                              "filter": _member_of(uses)}, headers=auth)  # fmt: skip
    assert cycle.status_code == 400
    # … and a named segment cannot start using it either.
    third = await create(engage, auth, "third")
    named = await engage.post("/segments/update", json={"segment_id": base,
                              "filter": _member_of(third)}, headers=auth)  # fmt: skip
    assert named.status_code == 400
    assert "other segments name this one" in named.json()["message"]
    # … and no segment names itself.
    itself = await engage.post("/segments/update", json={"segment_id": uses,
                               "filter": _member_of(uses)}, headers=auth)  # fmt: skip
    assert itself.json()["message"] == (
        "Invalid filter at filter.segment_membership.value: a segment cannot name itself"
    )
    # Dropping the reference frees the base segment again.
    freed = await engage.post("/segments/update", json={"segment_id": uses, "filter": BLUE},
                              headers=auth)  # fmt: skip
    assert freed.status_code == 200
    now_uses = await engage.post("/segments/update", json={"segment_id": base,
                                 "filter": _member_of(uses)}, headers=auth)  # fmt: skip
    assert now_uses.status_code == 200, now_uses.text


async def test_update_and_archive(engage: httpx.AsyncClient, auth: dict[str, str]) -> None:
    segment_id = await create(engage, auth)
    updated = await engage.post("/segments/update", json={
        "segment_id": segment_id, "name": "Renamed", "tags": ["a"],
        "filter": attribute("eye", "exists"),
    }, headers=auth)  # fmt: skip
    assert updated.status_code == 200
    got = await engage.get("/segments/get", params={"segment_id": segment_id}, headers=auth)
    assert got.json()["segment"]["name"] == "Renamed"
    assert got.json()["segment"]["filter"] == attribute("eye", "exists")
    empty = await engage.post("/segments/update", json={"segment_id": segment_id}, headers=auth)
    assert empty.status_code == 400
    archived = await engage.post("/segments/archive", json={"segment_id": segment_id},
                                 headers=auth)  # fmt: skip
    assert archived.status_code == 200
    listed = await engage.get("/segments/list", headers=auth)
    assert listed.json() == {"message": "success", "segments": []}
    again = await engage.post("/segments/update", json={"segment_id": segment_id, "name": "x"},
                              headers=auth)  # fmt: skip
    assert again.json() == {"message": "Segment is archived"}
    got = await engage.get("/segments/get", params={"segment_id": segment_id}, headers=auth)
    assert got.json()["segment"]["archived"] is True
    missing = await engage.post("/segments/archive", json={"segment_id": "nope"}, headers=auth)
    assert (missing.status_code, missing.json()) == (404, {"message": "Segment not found"})


async def test_list_pages_of_100_oldest_first(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    ids = [await create(engage, auth, f"s{i}", tags=["x"]) for i in range(101)]
    first = (await engage.get("/segments/list", headers=auth)).json()["segments"]
    assert [s["id"] for s in first] == ids[:100]
    assert first[0] == {"id": ids[0], "name": "s0", "analytics_tracking_enabled": False,
                        "tags": ["x"]}  # fmt: skip
    second = await engage.get("/segments/list", params={"page": 1}, headers=auth)
    assert [s["id"] for s in second.json()["segments"]] == ids[100:]
    newest = await engage.get("/segments/list", params={"sort_direction": "desc"}, headers=auth)
    assert newest.json()["segments"][0]["id"] == ids[-1]
    bad = await engage.get("/segments/list", params={"page": "-1"}, headers=auth)
    assert bad.status_code == 400


async def test_keys_permissions_and_workspaces(
    engage: httpx.AsyncClient, auth: dict[str, str], engage_db: Database,
    workspace: dict[str, Any],
) -> None:  # fmt: skip
    segment_id = await create(engage, auth)
    async with engage_db.transaction() as conn:
        lister = await workspaces.create_api_key(
            conn, workspace["workspace_id"], ["segments.list"], "lister"
        )
        other = await workspaces.bootstrap(conn, "Other", "http://engage.test")
    limited = {"Authorization": f"Bearer {lister.rest_api_key}"}
    assert (await engage.get("/segments/list", headers=limited)).status_code == 200
    denied = await engage.post("/segments/create", json={"name": "n", "filter": BLUE},
                               headers=limited)  # fmt: skip
    assert (denied.status_code, denied.json()) == (403, {"message": "Access Denied"})
    nobody = await engage.get("/segments/list")
    assert (nobody.status_code, nobody.json()) == (401, {"message": "Invalid API Key"})
    # The deprecated api_key query parameter still works on the GET endpoints.
    by_query = await engage.get("/segments/list", params={"api_key": workspace["rest_api_key"]})
    assert [s["id"] for s in by_query.json()["segments"]] == [segment_id]
    stranger = {"Authorization": f"Bearer {other.rest_api_key}"}
    foreign = await engage.get("/segments/details", params={"segment_id": segment_id},
                               headers=stranger)  # fmt: skip
    assert foreign.status_code == 404
    assert (await engage.get("/segments/list", headers=stranger)).json()["segments"] == []


async def test_openapi_documents_the_segment_endpoints(engage: httpx.AsyncClient) -> None:
    paths = (await engage.get("/openapi.json")).json()["paths"]
    for path in ("/segments/create", "/segments/update", "/segments/archive", "/segments/list",
                 "/segments/details", "/segments/get", "/segments/size",
                 "/users/export/segment", "/exports/segments/{name}"):  # fmt: skip
        assert path in paths


async def test_a_nul_in_a_parameter_is_never_a_500(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for path in ("/segments/details", "/segments/size"):
        response = await engage.get(path, params={"segment_id": "seg\x00ment"}, headers=auth)
        assert 400 <= response.status_code < 500, response.text
        assert "message" in response.json()
