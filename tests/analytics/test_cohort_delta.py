"""A cohort's tick re-evaluates only the users that may have changed: at every tick of a random
history (new events, late events, property changes, merges, windows sliding by) the members
are exactly those a computation of everyone finds."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import RowMapping, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.cohorts import service as cohorts
from cohortbridge.analytics.cohorts.logic import definition as d
from cohortbridge.analytics.cohorts.models import cohort_members
from cohortbridge.analytics.cohorts.repository import audience
from cohortbridge.analytics.cohorts.repository import definitions as cohort_repo
from cohortbridge.analytics.ingest import service as ingest
from cohortbridge.analytics.ingest.logic.events import check_events
from cohortbridge.analytics.projects import repository as project_repo
from cohortbridge.analytics.projects import service as projects
from cohortbridge.db.engine import Database

# Ahead of the clock: event types' activity is set now, before every simulated tick.
START = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
TYPES = ("Song Played", "Opened", "Push Sent")
DEFINITIONS = {
    "played twice in 3 days": {"andClauses": [{"orClauses": [{
        "type": "event", "type_value": "Song Played", "operator": ">=", "operator_value": 2,
        "time_type": "rolling", "time_value": 3}]}]},
    "not active in a day": {"andClauses": [{"negated": True, "orClauses": [{
        "type": "active", "time_type": "rolling", "time_value": 1}]}]},
    "new in 2 days, or pro": {"andClauses": [{"orClauses": [
        {"type": "new", "time_type": "rolling", "time_value": 2},
        {"type": "user_property", "prop": "gp:plan", "op": "is", "values": ["pro"]}]}]},
    "rock since start, offset window": {"andClauses": [
        {"orClauses": [{"type": "event", "type_value": "Song Played", "time_type": "since",
                        "start": START.isoformat(),
                        "filters": [{"prop": "genre", "op": "is", "values": ["rock"]}]}]},
        {"orClauses": [{"type": "event", "type_value": "_active", "time_type": "rolling",
                        "time_value": 2, "offset": 1}]}]},
    "spent over 6, or 2 genres, early on": {"andClauses": [{"orClauses": [
        {"type": "event", "type_value": "Song Played", "metric": {"type": "sum", "prop": "price"},
         "operator": ">", "operator_value": 6, "time_type": "first_use", "time_value": 2},
        {"type": "event", "type_value": "_all", "metric": {"type": "distinct", "prop": "genre"},
         "operator": "=", "operator_value": 2, "time_type": "rolling", "time_value": 1}]}]},
}  # fmt: skip


def history(rng: random.Random, now: datetime, tick: int) -> list[dict[str, Any]]:
    """One tick's arrivals: plays, opens and inactive pushes (some late, a few an hour in the
    future), plan changes, and anonymous devices that later log in (merges)."""
    events: list[dict[str, Any]] = []
    for _ in range(rng.randint(5, 25)):
        who = rng.randrange(40)
        kind = rng.choice(TYPES)
        late = timedelta(hours=rng.choice([0, 0, 0, 5, 30, 80]), minutes=rng.randrange(60))
        moment = now - late if rng.random() > 0.05 else now + timedelta(minutes=30)
        event: dict[str, Any] = {"user_id": f"user-{who:02d}", "event_type": kind,
                                 "time": int(moment.timestamp() * 1000),
                                 "event_properties": {"genre": rng.choice(["rock", "jazz"]),
                                                      "price": rng.randint(1, 5)}}  # fmt: skip
        if rng.random() < 0.15:
            event["user_properties"] = {"$set": {"plan": rng.choice(["pro", "free"])}}
        events.append(event)
    device = f"device-{tick:03d}"
    events.append({"device_id": device, "event_type": "Opened",
                   "time": int((now - timedelta(hours=1)).timestamp() * 1000)})  # fmt: skip
    if tick and rng.random() < 0.6:  # last tick's device logs in: its anonymous user merges
        events.append({"user_id": f"user-{rng.randrange(40):02d}",
                       "device_id": f"device-{tick - 1:03d}", "event_type": "Opened",
                       "time": int(now.timestamp() * 1000)})  # fmt: skip
    return events


async def everyone(db: Database, project_id: int, definition: Any, now: datetime) -> set[int]:
    async with db.read() as conn:
        scope = audience.Scope(
            dialect=conn.dialect.name, project_id=project_id, now=now,
            inactive=frozenset(await project_repo.inactive_types(conn, project_id)),
        )  # fmt: skip
        query = audience.members_query(d.parse(definition), scope)
        return {int(a) for a in (await conn.execute(query)).scalars()}


async def members(db: Database, pk: int) -> set[int]:
    async with db.read() as conn:
        query = select(cohort_members.c.amplitude_id).where(cohort_members.c.cohort == pk)
        return {int(a) for a in (await conn.execute(query)).scalars()}


async def reread(conn: AsyncConnection, pk: int) -> RowMapping:
    found = await cohort_repo.by_pk(conn, pk)
    assert found is not None
    return found


@pytest.mark.parametrize("seed", [1, 2])
async def test_deltas_match_computing_everyone(
    analytics_db: Database, project: dict[str, Any], seed: int
) -> None:
    rng = random.Random(seed)
    project_id = project["project_id"]
    async with analytics_db.transaction() as conn:
        await projects.set_event_activity(conn, project_id, "Push Sent", False)
        pks, ids = {}, {}
        for name, definition in DEFINITIONS.items():
            draft = cohorts.prepare({"name": name, "definition": definition}, creating=True)
            ids[name] = (await cohorts.create(conn, project_id, draft))["cohortId"]
            pks[name] = (await cohorts.found(conn, project_id, ids[name]))["pk"]
    definitions = {**DEFINITIONS, "players who are not pro": {"andClauses": [
        {"orClauses": [{"type": "cohort", "cohort_id": ids["played twice in 3 days"]}]},
        {"negated": True, "orClauses": [{"type": "user_property", "prop": "gp:plan",
                                         "op": "is", "values": ["pro"]}]}]}}  # fmt: skip
    async with analytics_db.transaction() as conn:  # computed after the cohort it names
        draft = cohorts.prepare({"name": "players who are not pro",
                                 "definition": definitions["players who are not pro"]},
                                creating=True)  # fmt: skip
        created = await cohorts.create(conn, project_id, draft)
        pks["players who are not pro"] = (await cohorts.found(conn, project_id,
                                                              created["cohortId"]))["pk"]  # fmt: skip
    deltas = 0
    for tick in range(16):
        now = START + timedelta(hours=7 * tick)
        checked, _ = check_events(history(rng, now, tick), min_id_length=5, now=now)
        async with analytics_db.transaction() as conn:
            await ingest.ingest(conn, ingest.Batch(project_id, checked, now))
        for name, pk in pks.items():
            async with analytics_db.transaction() as conn:
                row = await cohort_repo.by_pk(conn, pk)
                assert row is not None
                deltas += not (await cohorts.compute(conn, row, now)).full
            wanted = await everyone(analytics_db, project_id, definitions[name], now)
            assert await members(analytics_db, pk) == wanted, (name, tick)
    # Ticks 7 hours apart: everyone is computed at the first and then once a day (ticks 4, 8
    # and 12); the twelve others were deltas.
    assert deltas == 12 * len(definitions)


async def test_a_new_definition_or_activity_change_computes_everyone(
    analytics_db: Database, project: dict[str, Any]
) -> None:
    project_id = project["project_id"]
    definition = DEFINITIONS["not active in a day"]
    real_now = datetime.now(UTC)  # set_event_activity stamps the real time
    async with analytics_db.transaction() as conn:
        draft = cohorts.prepare({"name": "c", "definition": definition}, creating=True)
        created = await cohorts.create(conn, project_id, draft)
        row = await cohorts.found(conn, project_id, created["cohortId"])
        checked, _ = check_events([{"user_id": "user-01", "event_type": "Push Sent",
                                    "time": int(real_now.timestamp() * 1000)}],
                                  min_id_length=5, now=real_now)  # fmt: skip
        await ingest.ingest(conn, ingest.Batch(project_id, checked, real_now))
        await cohorts.compute(conn, row, real_now)
    assert len(await members(analytics_db, row["pk"])) == 0  # the push made user-01 active
    later = datetime.now(UTC) + timedelta(seconds=1)
    async with analytics_db.transaction() as conn:
        # Retroactive: inactive pushes never made anyone active. Nobody's row changed.
        await projects.set_event_activity(conn, project_id, "Push Sent", False)
        row = await reread(conn, row["pk"])
        assert (await cohorts.compute(conn, row, later)).full
    assert len(await members(analytics_db, row["pk"])) == 1
    async with analytics_db.transaction() as conn:
        # Within the margin of the change everyone is computed again; past it, deltas resume.
        for moment in (later + timedelta(minutes=10), later + timedelta(minutes=11)):
            row = await reread(conn, row["pk"])
            done = await cohorts.compute(conn, row, moment)
        assert not done.full
        draft = cohorts.prepare({"name": "c", "definition": DEFINITIONS["played twice in 3 days"]},
                                creating=False)  # fmt: skip
        await cohorts.update(conn, project_id, row["id"], draft)
        row = await reread(conn, row["pk"])
        assert (await cohorts.compute(conn, row, later + timedelta(minutes=12))).full
