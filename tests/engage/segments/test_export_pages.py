"""Export pages: in id order however many are read at once, and on a SQLite file the later
pages of a long export read by reader processes (db.processes) with the same text."""

from __future__ import annotations

import httpx
import orjson
import pytest

from cohortbridge.db.engine import Database
from cohortbridge.engage.segments.service import definitions, exports
from tests.engage.segments.test_segments_api import create
from tests.engage.users.helpers import track

FIELDS = ["external_id", "email", "custom_attributes", "custom_events"]
EVERYONE = {"random_bucket": {"comparison": "greater_than_or_equal_to", "value": 0}}


async def _text(db: Database, segment_id: str, page_size: int, fields: list[str]) -> bytes:
    async with db.read() as conn:
        row = await definitions.found(conn, None, segment_id)
    parts = [text async for _, text in exports.pages(db, row, fields, page_size=page_size)]
    return b"".join(parts)


async def test_pages_in_order_and_read_by_processes(
    engage: httpx.AsyncClient, auth: dict[str, str], engage_db: Database
) -> None:
    users = [{"external_id": f"u{i:02d}", "email": f"u{i}@example.com", "n": i,
              "at": "2024-01-02T03:04:05Z"} for i in range(23)]  # fmt: skip
    events = [{"external_id": f"u{i:02d}", "name": "played", "time": "2026-11-30T00:00:00Z"}
              for i in range(0, 23, 2)]  # fmt: skip
    assert (await track(engage, auth, attributes=users, events=events)).status_code == 201
    segment_id = await create(engage, auth, filter=EVERYONE)
    whole = await _text(engage_db, segment_id, 1000, FIELDS)  # one page, in this process
    assert engage_db.processes is None or not engage_db.processes.started
    paged = await _text(engage_db, segment_id, 2, FIELDS)  # 12 pages
    assert paged == whole
    lines = [orjson.loads(line) for line in whole.splitlines()]
    assert [u["external_id"] for u in lines] == [f"u{i:02d}" for i in range(23)]
    assert lines[0]["custom_attributes"]["at"] == "2024-01-02T03:04:05.000Z"
    if engage_db.dialect == "sqlite":
        # Pages after the first IN_PROCESS_PAGES were read by the reader processes.
        assert engage_db.processes is not None and engage_db.processes.started
    # Fields built in Python page the same way (never in the processes).
    python_fields = ["external_id", "devices"]
    assert await _text(engage_db, segment_id, 3, python_fields) == await _text(
        engage_db, segment_id, 1000, python_fields
    )


async def test_a_dead_reader_process_is_replaced(
    engage: httpx.AsyncClient, auth: dict[str, str], engage_db: Database
) -> None:
    processes = engage_db.processes
    if processes is None:
        pytest.skip("reader processes read SQLite files only")
    assert (await track(engage, auth, attributes=[{"external_id": "a"}])).status_code == 201
    sql, params = "SELECT external_id FROM profiles WHERE external_id = ?", ["a"]
    assert await processes.text(sql, params) == (1, b"a\n")
    for worker in list(processes._started()._processes.values()):
        worker.kill()
        worker.join()
    assert await processes.text(sql, params) == (1, b"a\n")
