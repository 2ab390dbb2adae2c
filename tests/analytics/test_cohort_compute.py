"""Cohort conditions against hand-computed expectations, windows that expire with time, and
who entered and left at each computation (spec amplitude §3.1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cohortbridge.analytics.cohorts import service as cohorts
from cohortbridge.analytics.cohorts.repository import membership
from cohortbridge.analytics.projects import service as projects
from cohortbridge.db.engine import Database
from tests.analytics.test_ingest_wire import upload

NOW = datetime.now(UTC).replace(microsecond=0)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@pytest.fixture
async def people(analytics: httpx.AsyncClient, analytics_db: Database,
                 project: dict[str, Any]) -> dict[str, int]:  # fmt: skip
    """alice: 5 rock songs in the last hours, plan pro, iOS; bob: 2 jazz songs 40 days ago and a
    recent inactive push; an anonymous device that opened the app yesterday."""
    async with analytics_db.transaction() as conn:
        await projects.set_event_activity(conn, project["project_id"], "Push Sent", False)
    songs = [{"user_id": "alice-1", "event_type": "Song Played", "platform": "iOS",
              "time": ms(NOW - timedelta(hours=h)), "event_properties": {"genre": "rock",
                                                                         "price": 2}}
             for h in range(1, 6)]  # fmt: skip
    response = await upload(analytics, project, [
        {"user_id": "alice-1", "event_type": "$identify", "time": ms(NOW - timedelta(hours=6)),
         "user_properties": {"$set": {"plan": "pro"}}},
        *songs,
        *({"user_id": "bob-22", "event_type": "Song Played",
           "time": ms(NOW - timedelta(days=40, hours=h)),
           "event_properties": {"genre": "Jazz", "price": 1}} for h in (1, 2)),
        {"user_id": "bob-22", "event_type": "Push Sent", "time": ms(NOW - timedelta(days=1)),
         "user_properties": {"plan": "free"}},
        {"device_id": "dev-333", "event_type": "Opened", "time": ms(NOW - timedelta(days=1))},
    ])  # fmt: skip
    assert response.status_code == 200, response.text
    return {"alice": 0, "bob": 1, "anonymous": 2}


async def members_of(db: Database, project: dict[str, Any], definition: Any,
                     now: datetime = NOW) -> set[str]:  # fmt: skip
    async with db.transaction() as conn:
        draft = cohorts.prepare({"name": "c", "definition": definition}, creating=True)
        created = await cohorts.create(conn, project["project_id"], draft)
        row = await cohorts.found(conn, project["project_id"], created["cohortId"])
        computed = await cohorts.compute(conn, row, now)
        rows = await membership.members_page(conn, row["pk"], 0, 1000)
    assert computed.size == len(rows)
    return {r["user_id"] or "anonymous" for r in rows}


def event(name: str, **extra: Any) -> dict[str, Any]:
    return {"andClauses": [{"orClauses": [{"type": "event", "type_value": name, **extra}]}]}


def one(condition: dict[str, Any], negated: bool = False) -> dict[str, Any]:
    return {"negated": negated, "orClauses": [condition]}


ROLLING_30 = {"time_type": "rolling", "time_value": 30}
CASES = [
    (event("Song Played", operator=">=", operator_value=3, **ROLLING_30), {"alice-1"}),
    (event("Song Played"), {"alice-1", "bob-22"}),
    (event("Song Played", operator="=", operator_value=0), set()),  # as Amplitude: nobody
    (event("Song Played", operator="=", operator_value=2), {"bob-22"}),
    (event("Song Played", filters=[{"prop": "genre", "op": "is", "values": ["rock"]}]),
     {"alice-1"}),
    (event("Song Played", filters=[{"prop": "genre", "op": "contains", "values": ["JA"]}]),
     {"bob-22"}),
    (event("Song Played", filters=[{"prop": "price", "op": "greater", "values": [1]}]),
     {"alice-1"}),
    (event("Song Played", filters=[{"prop": "price", "op": "is", "values": [1]}]), {"bob-22"}),
    (event("Song Played", operator=">", operator_value=5,
           metric={"type": "sum", "prop": "price"}), {"alice-1"}),
    (event("Song Played", operator=">=", operator_value=2,
           metric={"type": "distinct", "prop": "genre"}), set()),
    (event("_all", operator=">=", operator_value=3), {"alice-1", "bob-22"}),
    (event("_active", time_type="rolling", time_value=2), {"alice-1", "anonymous"}),
    (event("Song Played", time_type="since", start=(NOW - timedelta(days=2)).isoformat()),
     {"alice-1"}),
    (event("Song Played", time_type="between", start=(NOW - timedelta(days=45)).isoformat(),
           end=(NOW - timedelta(days=35)).isoformat()), {"bob-22"}),
    (event("Song Played", time_type="first_use", time_value=1), {"alice-1", "bob-22"}),
    (event("Song Played", time_type="rolling", time_value=30, offset=30), {"bob-22"}),
    ({"andClauses": [one({"type": "active", **ROLLING_30})]}, {"alice-1", "anonymous"}),
    ({"andClauses": [one({"type": "new", "time_type": "rolling", "time_value": 7})]},
     {"alice-1", "anonymous"}),
    ({"andClauses": [one({"type": "user_property", "prop": "gp:plan", "op": "is",
                          "values": ["pro"]})]}, {"alice-1"}),
    ({"andClauses": [one({"type": "user_property", "prop": "platform", "op": "is",
                          "values": ["iOS"]})]}, {"alice-1"}),
    ({"andClauses": [one({"type": "user_property", "prop": "gp:plan", "op": "is not",
                          "values": ["pro"]})]}, {"bob-22", "anonymous"}),
    # AND of ORs with negation: active lately, but not a song player lately.
    ({"andClauses": [one({"type": "active", **ROLLING_30}),
                     one({"type": "event", "type_value": "Song Played", **ROLLING_30},
                         negated=True)]}, {"anonymous"}),
    ({"andClauses": [{"orClauses": [
        {"type": "user_property", "prop": "gp:plan", "op": "is", "values": ["free"]},
        {"type": "event", "type_value": "Opened"}]}]}, {"bob-22", "anonymous"}),
]  # fmt: skip


@pytest.mark.parametrize(("definition", "expected"), CASES)
async def test_conditions(
    people: dict[str, int], analytics_db: Database, project: dict[str, Any], definition: Any,
    expected: set[str],
) -> None:  # fmt: skip
    assert await members_of(analytics_db, project, definition) == expected


async def test_rolling_windows_expire_and_changes_are_versioned(
    people: dict[str, int], analytics_db: Database, project: dict[str, Any]
) -> None:
    definition = {"andClauses": [one({"type": "event", "type_value": "Song Played",
                                      "time_type": "rolling", "time_value": 2})]}  # fmt: skip
    async with analytics_db.transaction() as conn:
        draft = cohorts.prepare({"name": "recent", "definition": definition}, creating=True)
        cohort_id = (await cohorts.create(conn, project["project_id"], draft))["cohortId"]
    results = []
    for moment in (NOW, NOW + timedelta(hours=1), NOW + timedelta(days=3)):
        async with analytics_db.transaction() as conn:
            row = await cohorts.found(conn, project["project_id"], cohort_id)
            results.append(await cohorts.compute(conn, row, moment))
    assert [(r.version, r.size, r.entered, r.left) for r in results] == [
        (1, 1, 1, 0),
        (2, 1, 0, 0),
        (3, 0, 0, 1),  # alice drops out when time passes
    ]
    async with analytics_db.read() as conn:
        row = await cohorts.found(conn, project["project_id"], cohort_id)
        assert list((await membership.changes(conn, row["pk"], 1)).values()) == [1]
        assert list((await membership.changes(conn, row["pk"], 3)).values()) == [-1]
        assert row["size"] == 0
        assert row["computed_at"] is not None


async def test_part_of_cohort_and_no_cycles(
    people: dict[str, int], analytics_db: Database, project: dict[str, Any]
) -> None:
    async with analytics_db.transaction() as conn:
        base = await cohorts.create(conn, project["project_id"], cohorts.prepare(
            {"name": "players", "definition": event("Song Played")}, creating=True))  # fmt: skip
        base_row = await cohorts.found(conn, project["project_id"], base["cohortId"])
        await cohorts.compute(conn, base_row, NOW)
    part = {"andClauses": [one({"type": "cohort", "cohort_id": base["cohortId"]}),
                           one({"type": "user_property", "prop": "gp:plan", "op": "is",
                                "values": ["free"]})]}  # fmt: skip
    assert await members_of(analytics_db, project, part) == {"bob-22"}
    outside = {
        "andClauses": [
            one({"type": "active", **ROLLING_30}),
            one({"type": "cohort", "cohort_id": base["cohortId"]}, True),
        ]
    }
    assert await members_of(analytics_db, project, outside) == {"anonymous"}
    async with analytics_db.transaction() as conn:
        uses = await cohorts.create(conn, project["project_id"], cohorts.prepare(
            {"name": "uses", "definition": {"andClauses": [one({"type": "cohort",
             "cohort_id": base["cohortId"]})]}}, creating=True))  # fmt: skip
        with pytest.raises(cohorts.CohortError, match="cycle"):
            await cohorts.update(conn, project["project_id"], base["cohortId"], cohorts.prepare(
                {"definition": {"andClauses": [one({"type": "cohort",
                 "cohort_id": uses["cohortId"]})]}}, creating=False))  # fmt: skip
        with pytest.raises(cohorts.CohortError, match="unknown cohort 'nope'"):
            await cohorts.create(conn, project["project_id"], cohorts.prepare(
                {"name": "x", "definition": {"andClauses": [one({"type": "cohort",
                 "cohort_id": "nope"})]}}, creating=True))  # fmt: skip


@pytest.mark.parametrize(("definition", "path"), [
    ({}, "definition.andClauses"),
    ({"andClauses": [{"orClauses": []}]}, "definition.andClauses[0].orClauses"),
    ({"andClauses": [one({"type": "event"})]}, "definition.andClauses[0].orClauses[0].type_value"),
    ({"andClauses": [one({"type": "event", "type_value": "x", "operator": "~"})]},
     "definition.andClauses[0].orClauses[0].operator"),
    ({"andClauses": [one({"type": "event", "type_value": "x", "time_type": "rolling"})]},
     "definition.andClauses[0].orClauses[0].time_value"),
    ({"andClauses": [one({"type": "event", "type_value": "x",
                          "filters": [{"prop": "p", "op": "less", "values": ["a"]}]})]},
     "definition.andClauses[0].orClauses[0].filters[0].values"),
    ({"andClauses": [one({"type": "magic"})]}, "definition.andClauses[0].orClauses[0].type"),
    ({"andClauses": [{"orClauses": [{"type": "new"}], "negated": "yes"}]},
     "definition.andClauses[0].negated"),
    ({"andClauses": [one({"type": "event", "type_value": "x", "bogus": 1})]},
     "definition.andClauses[0].orClauses[0].bogus"),
])  # fmt: skip
def test_bad_definitions_name_the_path(definition: Any, path: str) -> None:
    with pytest.raises(cohorts.CohortError) as caught:
        cohorts.prepare({"name": "x", "definition": definition}, creating=True)
    error: dict[str, Any] = caught.value.body["error"]
    assert error["metadata"]["path"] == path
    assert error["message"].startswith(f"Invalid definition at {path}: ")
