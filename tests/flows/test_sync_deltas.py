"""A real-time cohort sync plans only the users that changed since its last successful run: at
every tick of a random history (entries, exits, log-ins that change a member's identifier,
merges) engage ends up holding what planning against the whole cohort would give."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import httpx

from cohortbridge.analytics.cohorts import service as cohorts
from cohortbridge.analytics.cohorts.repository import definitions as cohort_repo
from cohortbridge.analytics.destinations import repository as sync_repo
from cohortbridge.analytics.destinations import service as destinations
from cohortbridge.analytics.ingest import service as ingest
from cohortbridge.analytics.ingest.logic.events import check_events
from cohortbridge.db.engine import Database
from tests.analytics.test_cohort_delta import DEFINITIONS, START, history
from tests.conftest import LiveServer
from tests.flows.test_cohort_sync import make_sync


async def test_planning_changes_matches_planning_everyone(
    engage_server: LiveServer, braze: dict[str, str], analytics_db: Database,
    project: dict[str, Any], http: httpx.AsyncClient,
) -> None:  # fmt: skip
    rng = random.Random(3)
    project_id = project["project_id"]
    async with analytics_db.transaction() as conn:
        definition = DEFINITIONS["played twice in 3 days"]
        draft = cohorts.prepare({"name": "players", "definition": definition}, creating=True)
        cohort_id = (await cohorts.create(conn, project_id, draft))["cohortId"]
    identifiers = ["property:handle", "user_id", "device_id"]
    sync_id = await make_sync(analytics_db, project, engage_server.url, braze, cohort_id,
                              *identifiers)  # fmt: skip
    planned_changes = 0
    for tick in range(10):
        now = START + timedelta(hours=7 * tick)
        # Some users get a new handle: a member's identifier changes, the cohort does not.
        renamed = [{"user_id": f"user-{rng.randrange(40):02d}", "event_type": "Opened",
                    "time": int(now.timestamp() * 1000),
                    "user_properties": {"$set": {"handle": f"h-{tick}-{n}"}}}
                   for n in range(5)]  # fmt: skip
        arrivals = history(rng, now, tick) + renamed
        checked, _ = check_events(arrivals, min_id_length=5, now=now)
        async with analytics_db.transaction() as conn:
            await ingest.ingest(conn, ingest.Batch(project_id, checked, now))
            row = await cohorts.found(conn, project_id, cohort_id)
            await cohorts.compute(conn, row, now)
        done = await destinations.run_sync(analytics_db, sync_id, http, now=now)
        assert done is not None and done.status == "succeeded", done
        planned_changes += not done.full
        async with analytics_db.transaction() as conn:
            fresh = await cohort_repo.by_pk(conn, row["pk"])
            assert fresh is not None
            everyone = await sync_repo.plan(conn, sync_id, fresh["pk"], identifiers)
            assert (everyone["adds"], everyone["removes"]) == (0, 0), tick
    assert planned_changes >= 6  # every run but the first, and the daily one, planned changes


async def test_a_removal_acknowledged_late_keeps_the_new_identifier(
    braze: dict[str, str], analytics_db: Database, project: dict[str, Any]
) -> None:
    """Four batches are in flight: the addition of a user's new identifier may be acknowledged
    before the removal of the old one, and must survive it."""
    async with analytics_db.transaction() as conn:
        draft = cohorts.prepare({"name": "c", "definition": DEFINITIONS["played twice in 3 days"]},
                                creating=True)  # fmt: skip
        cohort_id = (await cohorts.create(conn, project["project_id"], draft))["cohortId"]
    sync_id = await make_sync(analytics_db, project, "http://engage.test", braze, cohort_id,
                              "property:handle", "user_id")  # fmt: skip
    old: Any = {"seq": 1, "amplitude_id": 7, "kind": "user_id", "value": "user-7", "remove": True}
    new: Any = {
        "seq": 2,
        "amplitude_id": 7,
        "kind": "property:handle",
        "value": "h",
        "remove": False,
    }
    async with analytics_db.transaction() as conn:
        first: Any = {**old, "remove": False}
        await sync_repo.acknowledge(conn, sync_id, [first], None)
        await sync_repo.acknowledge(conn, sync_id, [new], None)  # the addition first
        await sync_repo.acknowledge(conn, sync_id, [old], None)  # then the removal
        assert await sync_repo.held(conn, sync_id) == {7: ("property:handle", "h")}
