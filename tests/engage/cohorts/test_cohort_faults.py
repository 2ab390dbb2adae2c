"""Cohort import under contention and crashes: 423 past the lock bound, nothing acknowledged lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from cohortbridge.config import Settings
from cohortbridge.db.engine import Database
from cohortbridge.db.unit import call
from cohortbridge.engage.app import create_app
from cohortbridge.engage.cohorts import repository as cohort_repo
from cohortbridge.engage.cohorts import service as cohorts
from cohortbridge.kit.clock import utcnow
from tests.cli.test_commands import free_port
from tests.engage.users.helpers import track


async def test_waiting_past_the_bound_is_423_resource_locked(
    engage_db: Database, settings: Settings, keys: dict[str, str], workspace: dict[str, Any]
) -> None:
    impatient = settings.model_copy(update={"cohort_lock_timeout_s": 0.3})
    app = create_app(impatient, engage_db)
    body = {"partner_api_key": keys["partner_api_key"], "client_secret": keys["client_secret"],
            "cohort_id": "busy", "cohort_changes": [{"user_ids": ["a"]}]}  # fmt: skip
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://e") as client:
        assert (
            await client.post("/partners/amplitude/cohorts/users", json=body)
        ).status_code == 201
        async with engage_db.transaction() as conn:
            # Another writer holds the cohort (the row lock on PostgreSQL, the writer on SQLite).
            await call(
                conn,
                cohort_repo.open_cohort,
                workspace["workspace_id"],
                "amplitude",
                "busy",
                now=utcnow(),
                timeout_s=5,
            )
            locked = await client.post("/partners/amplitude/cohorts/users", json=body)
        assert (locked.status_code, locked.json()) == (423, {"message": "Resource locked"})
        # 423 is retryable: once the other writer is done, the same request goes through.
        assert (
            await client.post("/partners/amplitude/cohorts/users", json=body)
        ).status_code == 201


async def test_a_crash_loses_nothing_that_was_acknowledged(
    engage: httpx.AsyncClient,
    auth: dict[str, str],
    engage_db: Database,
    keys: dict[str, str],
    workspace: dict[str, Any],
    tmp_path: Path,
) -> None:
    ids = [f"crash-{i}" for i in range(600)]
    for start in range(0, len(ids), 75):
        await track(engage, auth, attributes=[{"external_id": i} for i in ids[start : start + 75]])
    port = free_port()
    env = {**os.environ, "COHORTBRIDGE_ENGAGE_DATABASE_URL": engage_db.url,
           "COHORTBRIDGE_DATA_DIR": str(tmp_path / "var")}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "cohortbridge.cli", "serve", "engage", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    acknowledged: list[list[str]] = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            await _wait_up(client)

            async def send(batch: list[str]) -> None:
                body = {"partner_api_key": keys["partner_api_key"],
                        "client_secret": keys["client_secret"], "cohort_id": "crash",
                        "cohort_changes": [{"user_ids": batch}]}  # fmt: skip
                response = await client.post("/partners/amplitude/cohorts/users", json=body)
                if response.status_code == 201:
                    acknowledged.append(batch)

            async def sender() -> None:
                for start in range(0, len(ids), 20):
                    try:
                        await send(ids[start : start + 20])
                    except httpx.TransportError:
                        return  # the server is gone

            task = asyncio.create_task(sender())
            while len(acknowledged) < 5:
                await asyncio.sleep(0.01)
            server.send_signal(signal.SIGKILL)
            await task
    finally:
        server.kill()
        server.wait(timeout=30)
    async with engage_db.read() as conn:
        stored = set(await cohorts.members(conn, workspace["workspace_id"], "amplitude", "crash"))
    for batch in acknowledged:
        assert set(batch) <= stored
    # Whatever was not acknowledged is there whole or not at all.
    for start in range(0, len(ids), 20):
        chunk = set(ids[start : start + 20])
        assert chunk <= stored or not chunk & stored


async def _wait_up(client: httpx.AsyncClient) -> None:
    for _ in range(300):
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            await asyncio.sleep(0.1)
    raise AssertionError("the server did not start")
