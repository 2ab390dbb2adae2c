"""``cohortbridge worker``: the jobs outside the API server; two workers at once never run the
same cohort computation or sync twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from cohortbridge.analytics.cohorts import service as cohorts
from cohortbridge.analytics.destinations import repository as sync_repo
from cohortbridge.db.engine import Database
from tests.conftest import LiveServer
from tests.flows.test_cohort_sync import analytics_people, engage_people, in_engage, make_sync

CLI = [sys.executable, "-m", "cohortbridge.cli"]


async def test_two_workers_share_the_jobs(
    engage_server: LiveServer, engage: httpx.AsyncClient, auth: dict[str, str],
    engage_db: Database, workspace: dict[str, Any], braze: dict[str, str],
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any],
    tmp_path: Path,
) -> None:  # fmt: skip
    await engage_people(engage, auth, workspace)
    await analytics_people(analytics, project)
    definition = {"andClauses": [{"orClauses": [{"type": "event", "type_value": "Song Played",
                                                 "time_type": "rolling", "time_value": 7}]}]}  # fmt: skip
    async with analytics_db.transaction() as conn:
        draft = cohorts.prepare({"name": "Players", "definition": definition}, creating=True)
        cohort_id = (await cohorts.create(conn, project["project_id"], draft))["cohortId"]
    sync_id = await make_sync(analytics_db, project, engage_server.url, braze, cohort_id,
                              "user_id", cadence="hourly")  # fmt: skip
    env = {**os.environ, "COHORTBRIDGE_DATA_DIR": str(tmp_path / "var"),
           "COHORTBRIDGE_ANALYTICS_DATABASE_URL": analytics_db.url}  # fmt: skip
    workers = [subprocess.Popen([*CLI, "worker", "--once"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    outputs = [w.communicate(timeout=120) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [err for _out, err in outputs]
    rounds = [json.loads(out) for out, _err in outputs]
    assert sum(r["cohorts.compute_due"] for r in rounds) == 1
    assert sum(r["destinations.run_due"] for r in rounds) == 1
    async with analytics_db.read() as conn:
        runs = await sync_repo.runs(conn, sync_id, datetime.now(UTC) - timedelta(hours=1))
        row = await cohorts.found(conn, project["project_id"], cohort_id)
    assert [r["status"] for r in runs] == ["succeeded"]
    assert row["version"] == 1
    assert await in_engage(engage_db, workspace, cohort_id) == {"user-1", "user-2", "user-3"}
