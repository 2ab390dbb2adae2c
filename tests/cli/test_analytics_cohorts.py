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


async def test_computations_and_profile_api_flag(
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any],
    tmp_path: Path,
) -> None:  # fmt: skip
    await upload(analytics, project, [
        {"user_id": "flag-user-1", "event_type": "Purchase", "event_properties": {"price": 4}},
        {"user_id": "flag-user-1", "event_type": "Purchase", "event_properties": {"price": 6}},
    ])  # fmt: skip
    env = {"COHORTBRIDGE_DATA_DIR": str(tmp_path / "var"),
           "COHORTBRIDGE_ANALYTICS_DATABASE_URL": analytics_db.url}  # fmt: skip
    spec = {"kind": "aggregation", "aggregate": "sum", "prop": "price", "event_type": "Purchase"}
    created = run(["analytics", "computations", "create", "--project", "Test Project", "--name",
                   "spent", "--definition", json.dumps(spec), "--json"], env)  # fmt: skip
    computation_id = json.loads(created.stdout)["computation_id"]
    computed = run(["analytics", "computations", "compute", computation_id, "--json"], env)
    assert json.loads(computed.stdout) == {"users": 1}
    listed = json.loads(run(["analytics", "computations", "list", "--project", "Test Project",
                             "--json"], env).stdout)  # fmt: skip
    assert [(c["id"], c["name"]) for c in listed] == [(computation_id, "spent")]
    cohort = json.loads(run(["analytics", "cohorts", "create", "--project", "Test Project",
                             "--name", "Buyers", "--definition",
                             json.dumps({"andClauses": [{"orClauses": [
                                 {"type": "event", "type_value": "Purchase"}]}]}),
                             "--json"], env).stdout)["cohort_id"]  # fmt: skip
    run(["analytics", "cohorts", "compute", cohort], env)
    key = {"Authorization": f"Api-Key {project['secret_key']}"}
    params = {"user_id": "flag-user-1", "get_cohort_ids": "true", "comp_id": computation_id}
    before = (await analytics.get("/v1/userprofile", headers=key, params=params)).json()
    assert before["userData"]["cohort_ids"] == []
    assert float(before["userData"]["amp_props"][computation_id]) == 10
    run(["analytics", "cohorts", "update", cohort, "--profile-api", "on"], env)
    after = (await analytics.get("/v1/userprofile", headers=key, params=params)).json()
    assert after["userData"]["cohort_ids"] == [cohort]
    bad = run(["analytics", "cohorts", "update", cohort, "--profile-api", "maybe"], env,
              check=False)  # fmt: skip
    assert bad.returncode == 2
