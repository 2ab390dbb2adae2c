"""``cohortbridge analytics``: projects and event types from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from cohortbridge.analytics.app import create_app
from cohortbridge.config import Settings
from cohortbridge.db.engine import Database
from tests.cli.test_commands import run


async def test_project_create_list_and_event_types(analytics_db: Database, tmp_path: Path) -> None:
    env = {"COHORTBRIDGE_DATA_DIR": str(tmp_path / "var"),
           "COHORTBRIDGE_ANALYTICS_DATABASE_URL": analytics_db.url}  # fmt: skip
    created = json.loads(run(["analytics", "project", "create", "--name", "Shop", "--json"],
                             env).stdout)  # fmt: skip
    assert set(created) == {"project_id", "api_key", "secret_key"}
    assert len(created["api_key"]) == 32
    again = run(["analytics", "project", "create", "--name", "Shop"], env, check=False)
    assert again.returncode == 2
    assert "exists; choose another name" in again.stderr
    listed = json.loads(run(["analytics", "project", "list", "--json"], env).stdout)
    assert listed == [{"project_id": created["project_id"], "name": "Shop",
                       "api_key": created["api_key"]}]  # fmt: skip
    run(["analytics", "event-types", "set-active", "--project", "Shop", "Push Sent",
         "--inactive"], env)  # fmt: skip
    missing = run(["analytics", "event-types", "set-active", "--project", "Nope", "x",
                   "--active"], env, check=False)  # fmt: skip
    assert missing.returncode == 1
    # The keys work against the API.
    app = create_app(Settings(data_dir=tmp_path / "var"), analytics_db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://analytics.test") as client:  # fmt: skip
        sent = await client.post("/2/httpapi", json={"api_key": created["api_key"], "events": [
            {"user_id": "cli-user", "event_type": "Push Sent"}]})  # fmt: skip
        assert sent.status_code == 200
        profile = await client.get(
            "/v1/userprofile", params={"user_id": "cli-user"},
            headers={"Authorization": f"Api-Key {created['secret_key']}"},
        )  # fmt: skip
        assert profile.json()["userData"]["user_id"] == "cli-user"
