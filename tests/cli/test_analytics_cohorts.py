"""``cohortbridge analytics cohorts``: create, compute, list and download."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import httpx

from cohortbridge.db.engine import Database
from tests.analytics.test_ingest_wire import upload
from tests.cli.test_commands import run

DEFINITION = {"andClauses": [{"orClauses": [{"type": "event", "type_value": "Song Played"}]}]}


async def test_create_compute_list_download(
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any],
    tmp_path: Path,
) -> None:  # fmt: skip
    await upload(analytics, project, [
        {"user_id": f"cli-user-{i}", "event_type": "Song Played" if i % 2 else "Opened",
         "user_properties": {"plan": "pro"}} for i in range(6)
    ])  # fmt: skip
    env = {"COHORTBRIDGE_DATA_DIR": str(tmp_path / "var"),
           "COHORTBRIDGE_ANALYTICS_DATABASE_URL": analytics_db.url}  # fmt: skip
    spec = tmp_path / "players.json"
    spec.write_text(json.dumps(DEFINITION))
    created = run(["analytics", "cohorts", "create", "--project", "Test Project", "--name",
                   "Players", "--definition", f"@{spec}", "--json"], env)  # fmt: skip
    cohort_id = json.loads(created.stdout)["cohort_id"]
    computed = run(["analytics", "cohorts", "compute", cohort_id, "--json"], env)
    assert json.loads(computed.stdout) == {"size": 3, "entered": 3, "left": 0, "version": 1}
    listed = json.loads(run(["analytics", "cohorts", "list", "--project", "Test Project",
                             "--json"], env).stdout)  # fmt: skip
    assert [(c["cohort_id"], c["size"]) for c in listed] == [(cohort_id, 3)]
    out = tmp_path / "players.csv"
    run(["analytics", "cohorts", "download", cohort_id, "--out", str(out), "--prop", "plan"], env)
    with out.open() as sheet:
        rows = list(csv.DictReader(sheet))
    assert sorted(r["user_id"] for r in rows) == ["cli-user-1", "cli-user-3", "cli-user-5"]
    assert {r["plan"] for r in rows} == {"pro"}
    bad = run(["analytics", "cohorts", "create", "--project", "Test Project", "--name", "x",
               "--definition", '{"andClauses": []}'], env, check=False)  # fmt: skip
    assert bad.returncode == 2
    assert "Invalid definition at definition.andClauses" in bad.stderr
    missing = run(["analytics", "cohorts", "compute", "nope"], env, check=False)
    assert missing.returncode == 1
    assert "see `cohorts list`" in missing.stderr
