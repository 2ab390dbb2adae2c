"""Server processes freeze the objects they start with and keep their requests' objects out of
the cyclic collector's way (kit/heap.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from cohortbridge import asgi
from cohortbridge.kit.heap import YOUNG_THRESHOLD, freeze_startup_objects


@pytest.fixture
def unfrozen() -> Iterator[None]:
    threshold = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()


def test_a_worker_process_app_freezes_its_startup_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unfrozen: None
) -> None:
    monkeypatch.setenv("COHORTBRIDGE_DATA_DIR", str(tmp_path))
    assert gc.get_freeze_count() == 0
    asgi.engage()
    assert gc.get_freeze_count() > 10_000


def test_requests_objects_are_collected_rarely(unfrozen: None) -> None:
    _, middle, old = gc.get_threshold()
    freeze_startup_objects()
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)
    # Objects made and freed as a request does leave the youngest generation's count as it
    # was: no collection runs for them.
    before = gc.get_stats()[0]["collections"]
    for _ in range(200):
        rows = [{"profile_id": i, "name": "x"} for i in range(500)]
        del rows
    assert gc.get_stats()[0]["collections"] == before
