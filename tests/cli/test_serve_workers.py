"""``serve --workers N``: the parent hands each connection to the least busy worker, and
keeps N workers running."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psutil
import pytest

from tests.cli.test_commands import CLI, _wait_healthy, free_port

WORKERS = 2


@pytest.fixture
def served(cli_env: dict[str, str]) -> Iterator[tuple[psutil.Process, int]]:
    port = free_port()
    process = subprocess.Popen(
        [*CLI, "serve", "engage", "--port", str(port), "--workers", str(WORKERS)],
        env={**os.environ, **cli_env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/healthz", process)
        yield psutil.Process(process.pid), port
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert process.returncode == 0, process.stderr.read() if process.stderr else ""


def _workers(parent: psutil.Process) -> list[psutil.Process]:
    found = []
    for child in parent.children():
        with contextlib.suppress(psutil.Error):
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
    return found


def _established(process: psutil.Process, port: int) -> int:
    held = process.net_connections(kind="tcp")
    return sum(1 for c in held if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port)


def _serving(parent: psutil.Process, port: int) -> list[psutil.Process]:
    """The workers, once every one serves: connections go only to those that do, so a
    worker still starting gets none of a round of fresh ones."""

    def every_one_answers() -> list[psutil.Process] | None:
        workers = _workers(parent)
        if len(workers) != WORKERS:
            return None
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}") for _ in workers]
        try:
            for client in clients:
                client.get("/healthz")
                time.sleep(0.15)  # past the workers' next report
            held = [_established(w, port) for w in workers]
        finally:
            for client in clients:
                client.close()
        return workers if held == [1] * WORKERS else None

    found: list[psutil.Process] = _until(every_one_answers, "every worker serving", 90)
    return found


def _until(check: Callable[[], Any], what: str, timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"never: {what}")


def test_keep_alive_connections_spread_evenly_over_the_workers(
    served: tuple[psutil.Process, int],
) -> None:
    parent, port = served
    # At once: the first answer means that every worker serves (the parent accepts nothing
    # before), so the first clients do not all stay on the worker that started first.
    workers = _workers(parent)
    assert len(workers) == WORKERS
    clients = []
    try:
        # One after another, each kept open: with a shared listening socket, whichever
        # worker is idle first takes the next one, often the same worker every time.
        for _ in range(4 * WORKERS):
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}")
            assert client.get("/healthz").status_code == 200
            clients.append(client)
            time.sleep(0.15)  # past the workers' next report of their connections
        assert [_established(w, port) for w in workers] == [4] * WORKERS
        assert _established(parent, port) == 0
    finally:
        for client in clients:
            client.close()


def test_a_worker_that_dies_is_replaced(served: tuple[psutil.Process, int]) -> None:
    parent, port = served
    first = _serving(parent, port)
    first[0].kill()
    replaced = _until(
        lambda: {w.pid for w in _workers(parent)} - {w.pid for w in first}, "a new worker"
    )
    assert len(replaced) == 1
    _until(lambda: len(_workers(parent)) == WORKERS, "two workers again")
    for _ in range(10):  # every connection is served, whichever worker it goes to
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            assert client.get("/healthz").status_code == 200
