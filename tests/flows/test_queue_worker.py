"""``cohortbridge worker`` on PostgreSQL: procrastinate workers share the jobs, never run one
sync twice at once, and a sync whose worker was killed mid-run is finished by another."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from sqlalchemy import text

from cohortbridge.analytics.cohorts import service as cohorts
from cohortbridge.analytics.destinations import repository as sync_repo
from cohortbridge.analytics.streams import repository as stream_repo
from cohortbridge.analytics.traits import repository as trait_repo
from cohortbridge.db.engine import Database
from cohortbridge.db.leases import INTERRUPTED
from tests.analytics.test_ingest_wire import upload
from tests.conftest import LiveServer
from tests.flows.faults import FaultyProxy
from tests.flows.test_cohort_sync import in_engage, make_cohort, make_sync
from tests.flows.test_streaming import exported, make_stream, stream_key
from tests.flows.test_trait_sync import make_sync as make_trait_sync
from tests.flows.test_trait_sync import people

__all__ = ["stream_key"]

MEMBERS = 12000  # twelve requests of 1,000, four at a time, each held up by the proxy
STARTED = "runs cohort sync"
PLAYERS = {"andClauses": [{"orClauses": [{"type": "event", "type_value": "Song Played",
                                          "time_type": "rolling", "time_value": 7}]}]}  # fmt: skip


class Worker:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out: IO[bytes] = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cohortbridge.cli", "worker"], env=env, stdout=self._out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def said(self, words: str) -> int:
        return self.log.read_text(errors="replace").count(words)

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._out.close()
        return self.process.returncode


async def _until(check: Any, timeout_s: float, what: str, workers: list[Worker]) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            logs = "\n".join(
                f"--- {w.log.name} (exit {w.process.poll()})\n{w.log.read_text()[-3000:]}"
                for w in workers
            )
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        await asyncio.sleep(0.05)


async def _members(analytics: httpx.AsyncClient, project: dict[str, Any]) -> None:
    now = int((datetime.now(UTC) - timedelta(hours=1)).timestamp() * 1000)
    for start in range(0, MEMBERS, 2000):
        batch = [{"user_id": f"member-{i:05d}", "event_type": "Song Played", "time": now}
                 for i in range(start, min(start + 2000, MEMBERS))]  # fmt: skip
        assert (await upload(analytics, project, batch, "/batch")).status_code == 200


async def test_workers_share_a_sync_and_take_over_a_killed_one(
    backend: str, engage_server: LiveServer, engage: httpx.AsyncClient, auth: dict[str, str],
    engage_db: Database, workspace: dict[str, Any], braze: dict[str, str],
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any],
    tmp_path: Path,
) -> None:  # fmt: skip
    if backend != "postgresql":
        pytest.skip("procrastinate is the job queue of PostgreSQL; SQLite runs jobs in process")
    known = [f"member-{i:05d}" for i in range(0, MEMBERS, 160)]  # 75 of them exist in engage
    created = await engage.post("/users/track", headers=auth,
                                json={"attributes": [{"external_id": k} for k in known]})  # fmt: skip
    assert created.status_code == 201, created.text
    await _members(analytics, project)
    cohort_id = (await make_cohort(analytics_db, project))["cohort_id"]
    env = {**os.environ, "COHORTBRIDGE_DATA_DIR": str(tmp_path / "var"),
           "COHORTBRIDGE_ANALYTICS_DATABASE_URL": analytics_db.url,
           "COHORTBRIDGE_COHORT_TICK_S": "1", "COHORTBRIDGE_WORKER_STALLED_AFTER_S": "5"}  # fmt: skip
    with FaultyProxy(engage_server.url) as proxy:
        proxy.delay_s = 1.0
        sync_id = await make_sync(analytics_db, project, proxy.url, braze, cohort_id, "user_id",
                                  cadence="hourly")  # fmt: skip
        workers = [Worker(env, tmp_path / f"worker-{n}.log") for n in (1, 2)]
        try:
            await _until(lambda: _said_once(workers), 90, "a worker to start the sync", workers)
            await _until(lambda: _true(proxy.forwarded >= 3), 60, "the run to send", workers)
            running = next(w for w in workers if w.said(STARTED))
            other = next(w for w in workers if w is not running)
            # Both workers are up and the schedule enqueues the sync every second: still one
            # run, and the other worker never started a job of this sync.
            await asyncio.sleep(1.5)
            assert other.said(STARTED) == 0
            async with analytics_db.read() as conn:
                runs = await sync_repo.runs(conn, sync_id, datetime.now(UTC) - timedelta(hours=1))
                acknowledged = len(await sync_repo.held(conn, sync_id))
            assert [r["status"] for r in runs] == ["running"]
            assert acknowledged < MEMBERS
            running.kill()
            await _until(lambda: _succeeded(analytics_db, sync_id), 90,
                         "the other worker to finish the sync", workers)  # fmt: skip
            assert other.said(STARTED) >= 1
        finally:
            codes = [w.stop() for w in workers]
        assert codes[workers.index(other)] == 0, other.log.read_text()[-3000:]
    async with analytics_db.read() as conn:
        runs = sorted(await sync_repo.runs(conn, sync_id, datetime.now(UTC) - timedelta(hours=1)),
                      key=lambda r: r["id"])  # fmt: skip
        assert len(await sync_repo.held(conn, sync_id)) == MEMBERS
        ended = (await conn.execute(text(
            "SELECT status FROM procrastinate_jobs WHERE task_name = 'destinations.run_sync'"
        ))).scalars().all()  # fmt: skip
    assert [(r["status"], r["error"]) for r in runs] == [("failed", INTERRUPTED),
                                                         ("succeeded", None)]  # fmt: skip
    assert runs[1]["added"] <= MEMBERS - acknowledged
    assert "failed" in ended  # the killed worker's job, ended by the recovery
    assert await in_engage(engage_db, workspace, cohort_id) == set(known)


async def _said_once(workers: list[Worker]) -> bool:
    return sum(w.said(STARTED) for w in workers) >= 1


async def _true(value: bool) -> bool:
    return value


async def _succeeded(db: Database, sync_id: str) -> bool:
    async with db.read() as conn:
        run = await sync_repo.latest_run(conn, sync_id)
    return run is not None and run["status"] == "succeeded"


async def test_one_worker_runs_every_kind_of_job(
    backend: str, engage_server: LiveServer, engage: httpx.AsyncClient, auth: dict[str, str],
    engage_db: Database, workspace: dict[str, Any], stream_key: str,
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any],
    tmp_path: Path,
) -> None:  # fmt: skip
    if backend != "postgresql":
        pytest.skip("procrastinate is the job queue of PostgreSQL; SQLite runs jobs in process")
    stream_id = await make_stream(analytics_db, project, engage_server.url, stream_key,
                                  workspace, event_types=["Song Played"])  # fmt: skip
    await people(analytics, project)  # Song Played by four users, user properties "plan"
    sync_id = await make_trait_sync(analytics_db, project, engage_server.url, stream_key,
                                    user_property="plan")  # fmt: skip
    async with analytics_db.transaction() as conn:
        draft = cohorts.prepare({"name": "Players", "definition": PLAYERS}, creating=True)
        cohort_id = (await cohorts.create(conn, project["project_id"], draft))["cohortId"]
    env = {**os.environ, "COHORTBRIDGE_DATA_DIR": str(tmp_path / "var"),
           "COHORTBRIDGE_ANALYTICS_DATABASE_URL": analytics_db.url,
           "COHORTBRIDGE_COHORT_TICK_S": "1"}  # fmt: skip
    worker = Worker(env, tmp_path / "worker.log")
    try:

        async def all_done() -> bool:
            async with analytics_db.read() as conn:
                pending = (await stream_repo.backlog(conn, stream_id))["pending"]
                runs = await trait_repo.runs(conn, sync_id, datetime.now(UTC) - timedelta(hours=1))
                cohort = await cohorts.found(conn, project["project_id"], cohort_id)
            done = any(r["status"] == "succeeded" for r in runs)
            return pending == 0 and done and cohort["version"] >= 1

        await _until(all_done, 90, "the stream, the property sync and the cohort", [worker])
    finally:
        assert worker.stop() == 0, worker.log.read_text()[-3000:]  # Ctrl-C: a clean stop
    users = await exported(engage, auth, "user-1", "user-2")
    assert users["user-2"]["custom_attributes"] == {"plan": "free"}
    assert {e["name"] for e in users["user-1"]["custom_events"]} == {"Song Played"}
