"""Computations (spec amplitude §4.3): values per user, shown by the User Profile API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.analytics.test_cohort_api import basic
from tests.analytics.test_ingest_wire import upload

NOW = datetime.now(UTC)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@pytest.fixture
async def purchases(analytics: httpx.AsyncClient, project: dict[str, Any]) -> None:
    response = await upload(analytics, project, [
        *({"user_id": "buyer-1", "event_type": "Purchase", "time": ms(NOW - timedelta(hours=h)),
           "event_properties": {"price": p, "item": i}}
          for h, p, i in ((3, 10, "hat"), (2, 2.5, "pin"), (1, 7, "mug"))),
        {"user_id": "buyer-2", "event_type": "Purchase", "time": ms(NOW - timedelta(days=40)),
         "event_properties": {"price": 100, "item": "old"}},
        {"user_id": "browser-3", "event_type": "Viewed", "time": ms(NOW - timedelta(hours=1))},
    ])  # fmt: skip
    assert response.status_code == 200


async def computed(analytics: httpx.AsyncClient, project: dict[str, Any],
                   spec: dict[str, Any]) -> str:  # fmt: skip
    created = await analytics.post("/api/3/computations", headers=basic(project),
                                   json={"name": "value", **spec})  # fmt: skip
    assert created.status_code == 200, created.text
    computation_id: str = created.json()["id"]
    done = await analytics.post(f"/api/3/computations/{computation_id}/compute",
                                headers=basic(project))  # fmt: skip
    assert done.status_code == 200, done.text
    return computation_id


async def value(analytics: httpx.AsyncClient, project: dict[str, Any], user_id: str,
                computation_id: str) -> Any:  # fmt: skip
    response = await analytics.get("/v1/userprofile", params={
        "user_id": user_id, "comp_id": computation_id,
    }, headers={"Authorization": f"Api-Key {project['secret_key']}"})  # fmt: skip
    return response.json()["userData"]["amp_props"].get(computation_id)


LAST_30 = {"time_type": "rolling", "time_value": 30}


@pytest.mark.parametrize(("spec", "expected"), [
    ({"kind": "count", "event_type": "Purchase", **LAST_30},
     {"buyer-1": "3", "buyer-2": None, "browser-3": "0"}),
    ({"kind": "aggregation", "aggregate": "sum", "prop": "price", "event_type": "Purchase",
      **LAST_30}, {"buyer-1": "19.5", "buyer-2": None, "browser-3": None}),
    ({"kind": "aggregation", "aggregate": "max", "prop": "price", "event_type": "Purchase"},
     {"buyer-1": "10", "buyer-2": "100"}),
    ({"kind": "aggregation", "aggregate": "avg", "prop": "price", "event_type": "Purchase",
      **LAST_30}, {"buyer-1": "6.5"}),
    ({"kind": "first", "prop": "item", "event_type": "Purchase", **LAST_30},
     {"buyer-1": "hat"}),
    ({"kind": "last", "prop": "item", "event_type": "Purchase"},
     {"buyer-1": "mug", "buyer-2": "old"}),
])  # fmt: skip
async def test_computation_values(
    purchases: None, analytics: httpx.AsyncClient, project: dict[str, Any],
    spec: dict[str, Any], expected: dict[str, Any],
) -> None:  # fmt: skip
    computation_id = await computed(analytics, project, spec)
    for user_id, wanted in expected.items():
        got = await value(analytics, project, user_id, computation_id)
        if wanted is not None and "." in wanted:
            assert float(got) == float(wanted), (user_id, got)
        else:
            assert got in (wanted, f"{wanted}.0") if wanted else got is None, (user_id, got)


async def test_listing_profile_and_bad_specs(
    purchases: None, analytics: httpx.AsyncClient, project: dict[str, Any]
) -> None:
    counted = await computed(analytics, project, {"kind": "count", "event_type": "Purchase"})
    listed = await analytics.get("/api/3/computations", headers=basic(project))
    (item,) = listed.json()["computations"]
    assert (item["id"], item["name"], item["kind"]) == (counted, "value", "count")
    assert isinstance(item["lastComputed"], int)
    profile = await analytics.get("/v1/userprofile", params={
        "user_id": "buyer-1", "get_computations": "true", "get_amp_props": "true",
    }, headers={"Authorization": f"Api-Key {project['secret_key']}"})  # fmt: skip
    props = profile.json()["userData"]["amp_props"]
    assert props[counted] == "3"
    assert "first_used" in props
    bad = await analytics.post("/api/3/computations", headers=basic(project),
                               json={"name": "x", "kind": "aggregation", "event_type": "e",
                                     "prop": "p", "aggregate": "median"})  # fmt: skip
    assert bad.status_code == 400
    assert bad.json()["error"]["metadata"]["path"] == "spec.aggregate"
    missing = await analytics.post("/api/3/computations/nope/compute", headers=basic(project))
    assert missing.status_code == 404
