"""Server processes keep their startup objects and their requests' objects out of the
cyclic collector's way."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from cohortbridge.kit.heap import YOUNG_THRESHOLD, freeze_startup_objects


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()


def test_startup_objects_are_frozen_and_requests_collected_rarely(
    restored_collector: None,
) -> None:
    _, middle, old = gc.get_threshold()
    freeze_startup_objects()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)
    # Objects made and freed as a request does leave the youngest generation's count as it
    # was: no collection runs for them.
    before = gc.get_stats()[0]["collections"]
    for _ in range(200):
        rows = [{"profile_id": i, "name": "x"} for i in range(500)]
        del rows
    assert gc.get_stats()[0]["collections"] == before
