"""Server processes freeze the objects they start with (kit/heap.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from cohortbridge import asgi


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_a_worker_process_app_freezes_its_startup_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unfrozen: None
) -> None:
    monkeypatch.setenv("COHORTBRIDGE_DATA_DIR", str(tmp_path))
    assert gc.get_freeze_count() == 0
    asgi.engage()
    assert gc.get_freeze_count() > 10_000
