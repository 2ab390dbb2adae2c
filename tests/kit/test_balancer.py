"""The parent of ``serve --workers``: which worker gets a connection, and what happens when
the workers cannot start."""

from __future__ import annotations

import socket

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
