"""``cohortbridge analytics streams`` and ``syncs create --property|--computation`` from the
command line, to a real engage server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from cohortbridge.db.engine import Database
from tests.analytics.test_computations import computed
from tests.cli.test_commands import run
from tests.conftest import LiveServer
from tests.flows.test_streaming import event_counts, exported, played, stream_key
from tests.flows.test_trait_sync import attributes, people

__all__ = ["LiveServer", "stream_key"]


def destination(env: dict[str, str], url: str, key: str, app_id: str | None = None) -> str:
    created = run(["analytics", "destinations", "create", "braze", "--project", "Test Project",
                   "--rest-endpoint", url, "--rest-api-key", key,
                   *(["--app-id", app_id] if app_id else []), "--json"], env)  # fmt: skip
    return str(json.loads(created.stdout)["destination_id"])


def cli_env(tmp_path: Path, analytics_db: Database) -> dict[str, str]:
    return {"COHORTBRIDGE_DATA_DIR": str(tmp_path / "var"),
            "COHORTBRIDGE_ANALYTICS_DATABASE_URL": analytics_db.url}  # fmt: skip


async def test_streams_from_the_command_line(
    engage_server: LiveServer, engage: httpx.AsyncClient, auth: dict[str, str],
    workspace: dict[str, Any], stream_key: str, analytics: httpx.AsyncClient,
    analytics_db: Database, project: dict[str, Any], tmp_path: Path,
) -> None:  # fmt: skip
    env = cli_env(tmp_path, analytics_db)
    no_key = destination(env, engage_server.url, "")
    refused = run(["analytics", "streams", "create", "--destination", no_key], env, check=False)
    assert refused.returncode == 2 and "--rest-api-key" in refused.stderr
    target = destination(env, engage_server.url, stream_key, workspace["app_id"])
    bad = run(["analytics", "streams", "create", "--destination", target, "--where",
               '{"prop": "genre", "op": "near", "values": ["rock"]}'], env, check=False)  # fmt: skip
    assert bad.returncode == 2 and "filters[0].op" in bad.stderr
    created = run(["analytics", "streams", "create", "--destination", target, "--event-type",
                   "Song Played", "--where", '{"prop": "genre", "op": "is", "values": ["rock"]}',
                   "--event-property", "genre", "--json"], env)  # fmt: skip
    stream_id = json.loads(created.stdout)["stream_id"]
    await analytics.post("/2/httpapi", json={"api_key": project["api_key"], "events": [
        played("user-1", "rock"), played("user-2", "pop")]})  # fmt: skip
    listed = json.loads(run(["analytics", "streams", "list", "--project", "Test Project",
                             "--json"], env).stdout)  # fmt: skip
    assert [(s["stream_id"], s["pending"], s["event_types"]) for s in listed] == [
        (stream_id, 1, ["Song Played"])]  # fmt: skip
    done = json.loads(run(["analytics", "streams", "forward", stream_id, "--json"], env).stdout)
    assert (done["forwarded"], done["failed"]) == (1, 0)
    assert event_counts((await exported(engage, auth, "user-1"))["user-1"]) == {"Song Played": 1}
    history = json.loads(run(["analytics", "streams", "history", stream_id, "--json"],
                             env).stdout)  # fmt: skip
    assert (history["pending"], sum(m["forwarded"] for m in history["minutes"])) == (0, 1)
    run(["analytics", "streams", "disable", stream_id], env)
    await analytics.post("/2/httpapi", json={"api_key": project["api_key"], "events": [
        played("user-3", "rock")]})  # fmt: skip
    listed = json.loads(run(["analytics", "streams", "list", "--project", "Test Project",
                             "--json"], env).stdout)  # fmt: skip
    assert listed[0]["pending"] == 0 and listed[0]["enabled"] is False
    assert run(["analytics", "streams", "history", "nope"], env, check=False).returncode == 1


async def test_property_and_computation_syncs_from_the_command_line(
    engage_server: LiveServer, engage: httpx.AsyncClient, auth: dict[str, str],
    stream_key: str, analytics: httpx.AsyncClient, analytics_db: Database,
    project: dict[str, Any], tmp_path: Path,
) -> None:  # fmt: skip
    env = cli_env(tmp_path, analytics_db)
    await people(analytics, project)
    target = destination(env, engage_server.url, stream_key)
    realtime = run(["analytics", "syncs", "create", "--property", "plan", "--destination",
                    target, "--cadence", "realtime"], env, check=False)  # fmt: skip
    assert realtime.returncode == 2 and "never real-time" in realtime.stderr
    both = run(["analytics", "syncs", "create", "--property", "plan", "--cohort", "x",
                "--destination", target, "--cadence", "daily"], env, check=False)  # fmt: skip
    assert both.returncode == 2
    sync_id = json.loads(run(["analytics", "syncs", "create", "--property", "plan",
                              "--destination", target, "--cadence", "daily", "--json"],
                             env).stdout)["sync_id"]  # fmt: skip
    first = json.loads(run(["analytics", "syncs", "run", sync_id, "--json"], env).stdout)
    assert (first["status"], first["sent"], first["candidates"]) == ("succeeded", 2, 4)
    second = json.loads(run(["analytics", "syncs", "run", sync_id, "--json"], env).stdout)
    assert (second["sent"], second["unchanged"]) == (0, 2)
    history = json.loads(run(["analytics", "syncs", "history", sync_id, "--json"], env).stdout)
    assert [h["sent"] for h in history] == [0, 2]
    computation_id = await computed(analytics, project, {
        "kind": "count", "event_type": "Song Played", "time_type": "rolling", "time_value": 30,
    })  # fmt: skip
    by_alias = json.loads(run(["analytics", "syncs", "create", "--computation", computation_id,
                               "--destination", target, "--cadence", "once", "--identifier",
                               "alias:amplitude_user", "--json"], env).stdout)  # fmt: skip
    assert by_alias["attribute"] == "value"
    done = json.loads(run(["analytics", "syncs", "run", by_alias["sync_id"], "--json"],
                          env).stdout)  # fmt: skip
    assert done["sent"] == 3
    response = await engage.post("/users/export/ids", headers=auth, json={
        "user_aliases": [{"alias_name": "user-4", "alias_label": "amplitude_user"}],
        "fields_to_export": ["custom_attributes", "user_aliases"]})  # fmt: skip
    (user,) = response.json()["users"]
    assert user["custom_attributes"] == {"value": 1}  # an alias-only profile, created
    assert attributes(await exported(engage, auth, "user-1"), "user-1") == {"plan": "pro"}
