"""``cohortbridge analytics destinations|syncs``: the cohort sync from the command line, to a
real engage server."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import httpx

from cohortbridge.db.engine import Database
from tests.cli.test_commands import run
from tests.conftest import LiveServer
from tests.flows.test_cohort_sync import analytics_people, engage_people, in_engage, make_cohort

__all__ = ["LiveServer"]


async def test_destinations_and_syncs(
    engage_server: LiveServer, engage: httpx.AsyncClient, auth: dict[str, str],
    engage_db: Database, workspace: dict[str, Any], braze: dict[str, str],
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any],
    tmp_path: Path,
) -> None:  # fmt: skip
    await engage_people(engage, auth, workspace)
    await analytics_people(analytics, project)
    cohort_id = (await make_cohort(analytics_db, project))["cohort_id"]
    env = {"COHORTBRIDGE_DATA_DIR": str(tmp_path / "var"),
           "COHORTBRIDGE_ANALYTICS_DATABASE_URL": analytics_db.url}  # fmt: skip
    created = run(["analytics", "destinations", "create", "braze", "--project", "Test Project",
                   "--rest-endpoint", engage_server.url, "--data-import-key", "wrong",
                   "--partner-key", braze["partner_api_key"], "--json"], env)  # fmt: skip
    destination_id = json.loads(created.stdout)["destination_id"]
    sync = run(["analytics", "syncs", "create", "--cohort", cohort_id, "--destination",
                destination_id, "--cadence", "daily", "--identifier", "user_id",
                "--identifier", "device_id", "--json"], env)  # fmt: skip
    sync_id = json.loads(sync.stdout)["sync_id"]
    refused = run(["analytics", "syncs", "run", sync_id, "--json"], env, check=False)
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["status"] == "failed"
    run(["analytics", "destinations", "update", destination_id, "--data-import-key",
         braze["client_secret"]], env)  # fmt: skip
    done = json.loads(run(["analytics", "syncs", "run", sync_id, "--json"], env).stdout)
    assert (done["status"], done["added"], done["skipped"]) == ("succeeded", 5, 0)
    assert await in_engage(engage_db, workspace, cohort_id) == {"user-1", "user-2", "user-3",
                                                                "anonymous"}  # fmt: skip
    report = tmp_path / "run.csv"
    history = json.loads(run(["analytics", "syncs", "history", sync_id, "--json",
                              "--users-csv", str(report)], env).stdout)  # fmt: skip
    assert [h["status"] for h in history] == ["succeeded", "failed"]
    with report.open() as sheet:
        rows = list(csv.DictReader(sheet))
    assert set(rows[0]) == {"amplitude_id", "operation", "mapped_property", "skip_detected",
                            "skip_reason"}  # fmt: skip
    assert sorted(r["mapped_property"] for r in rows) == [
        "device-anon-1", "user-1", "user-2", "user-3", "user-6"]  # fmt: skip
    bad = run(["analytics", "syncs", "create", "--cohort", cohort_id, "--destination",
               destination_id, "--cadence", "weekly", "--identifier", "user_id"], env,
              check=False)  # fmt: skip
    assert bad.returncode == 2
    assert "cadence 'weekly' is not one of" in bad.stderr
