"""A sync run killed half-way (SIGKILL of the process) loses nothing: the next run sends only
what engage did not acknowledge, and engage ends holding exactly the cohort."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from cohortbridge.analytics.destinations import repository as sync_repo
from cohortbridge.analytics.destinations import service as destinations
from cohortbridge.db.engine import Database
from tests.analytics.test_ingest_wire import upload
from tests.conftest import LiveServer
from tests.flows.faults import FaultyProxy
from tests.flows.test_cohort_sync import in_engage, make_cohort, make_sync

MEMBERS = 9000  # nine requests of 1,000: three rounds of up to four


async def test_a_killed_run_is_finished_by_the_next(
    engage_server: LiveServer, engage: httpx.AsyncClient, auth: dict[str, str],
    engage_db: Database, workspace: dict[str, Any], braze: dict[str, str],
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any],
    tmp_path: Path,
) -> None:  # fmt: skip
    known = [f"member-{i:05d}" for i in range(0, MEMBERS, 120)]  # 75 of them exist in engage
    await engage.post("/users/track", headers=auth,
                      json={"attributes": [{"external_id": k} for k in known]})  # fmt: skip
    now = int((datetime.now(UTC) - timedelta(hours=1)).timestamp() * 1000)
    for start in range(0, MEMBERS, 2000):
        batch = [{"user_id": f"member-{i:05d}", "event_type": "Song Played", "time": now}
                 for i in range(start, min(start + 2000, MEMBERS))]  # fmt: skip
        assert (await upload(analytics, project, batch, "/batch")).status_code == 200
    cohort_id = (await make_cohort(analytics_db, project))["cohort_id"]
    with FaultyProxy(engage_server.url) as proxy:
        proxy.delay_s = 0.5
        sync_id = await make_sync(analytics_db, project, proxy.url, braze, cohort_id, "user_id")
        env = {**os.environ, "COHORTBRIDGE_DATA_DIR": str(tmp_path / "var"),
               "COHORTBRIDGE_ANALYTICS_DATABASE_URL": analytics_db.url}  # fmt: skip
        worker = subprocess.Popen(
            [sys.executable, "-m", "cohortbridge.cli", "analytics", "syncs", "run", sync_id],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        # The name and four batches, then one of the second round: the first round's
        # acknowledgements are committed (a round starts after the last one's are).
        while proxy.forwarded < 6 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        sent_before = proxy.forwarded
        assert 6 <= sent_before < 10
        async with analytics_db.read() as conn:
            acknowledged = len(await sync_repo.held(conn, sync_id))
        assert 0 < acknowledged < MEMBERS
        # The lease of the killed run would keep the sync 15 minutes; a later tick takes over.
        async with httpx.AsyncClient(timeout=10) as http:
            result = await destinations.run_sync(
                analytics_db, sync_id, http, now=datetime.now(UTC) + timedelta(minutes=16)
            )
        assert result is not None and result.status == "succeeded", result
        assert result.added == MEMBERS - acknowledged
        # Only what was not acknowledged went again; the killed run's requests still in flight
        # (up to four) may reach the proxy after the kill too.
        assert proxy.forwarded - sent_before <= (MEMBERS - acknowledged) // 1000 + 4
    async with analytics_db.read() as conn:
        assert len(await sync_repo.held(conn, sync_id)) == MEMBERS
    assert await in_engage(engage_db, workspace, cohort_id) == set(known)
