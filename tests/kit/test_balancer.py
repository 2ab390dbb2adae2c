"""The parent of ``serve --workers``: which worker gets a connection, and what happens when
the workers cannot start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from cohortbridge.kit.balancer import STARTUP_FAILURE, Balancer, WorkerSpec, least_loaded


def test_the_least_loaded_worker_gets_the_connection() -> None:
    assert least_loaded([3, 1, 2], start=0) == 1
    assert least_loaded([0, 5], start=1) == 0


def test_ties_go_round_robin_from_the_start() -> None:
    assert [least_loaded([2, 2, 2], start=s) for s in range(3)] == [0, 1, 2]
    assert least_loaded([1, 2, 1], start=1) == 2


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_workers_that_cannot_start_stop_the_parent_with_uvicorns_code() -> None:
    spec = WorkerSpec(app="tests.kit.no_such_module:app", log_level="critical")
    assert Balancer(spec, "127.0.0.1", _free_port(), workers=2).run() == STARTUP_FAILURE


def test_nothing_is_accepted_before_every_worker_serves(tmp_path: Path) -> None:
    """Keep-alive clients that connect while one worker still starts would otherwise all
    stay on the others."""
    port = _free_port()
    code = (
        "from cohortbridge.kit.balancer import Balancer, WorkerSpec; "
        f"Balancer(WorkerSpec('tests.kit.slow_start_app:app', 'warning'), '127.0.0.1', {port}, 2).run()"
    )
    env = {**os.environ, "SLOW_START_LOCK": str(tmp_path / "lock")}
    parent = subprocess.Popen([sys.executable, "-c", code], env=env)
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) for _ in range(4)]
    try:
        first = _first_answer(clients[0])
        pids = [first, *(c.get("/").json()["pid"] for c in clients[1:])]
        assert sorted(Counter(pids).values()) == [2, 2]
    finally:
        for client in clients:
            client.close()
        parent.send_signal(signal.SIGTERM)
        parent.wait(timeout=60)
    assert parent.returncode == 0


def _first_answer(client: httpx.Client) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            pid: int = client.get("/").json()["pid"]
            return pid
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("the balancer never answered")
