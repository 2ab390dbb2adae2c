"""``POST /users/export/segment`` (spec braze §5.6): the request, the export job, its files.

The request records a running export (one per segment at a time) and answers at once with the
``object_prefix`` and the download URL; the job pages through the segment's members in id
order, writes newline-delimited user objects (the ``/users/export/ids`` shape) into one zip
file, ~5,000 users per member file, then POSTs ``{"success": true, "url": …}`` to the
``callback_endpoint``.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
import zipfile
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.db.engine import Database
from cohortbridge.engage.errors import BrazeError
from cohortbridge.engage.segments.repository import audience
from cohortbridge.engage.segments.repository import exports as repo
from cohortbridge.engage.segments.service.definitions import audience_of, found
from cohortbridge.engage.users.logic.export import KNOWN_FIELDS, line_fields, ndjson
from cohortbridge.engage.users.service.export import (
    export_ndjson,
    export_ndjson_in,
    export_users,
)
from cohortbridge.kit.clock import utcnow

PAGE = 5_000  # users per member file (Braze: "~1 file per 5,000 users")
# Pages read at once in this process: PostgreSQL's backends work in parallel (3 pages: 83-87k
# users/s, 2: 75-76k, in process); two SQLite statements building text at once took longer
# than one after the other (its allocator's lock: 3.8 → 5.4 s for 300,000 users).
READS_AHEAD = {"postgresql": 3, "sqlite": 1}
# Pages read in this process before a SQLite export turns to reader processes (db.processes):
# short exports never start them.
IN_PROCESS_PAGES = 2
MAX_CUSTOM_ATTRIBUTES = 500
HISTORY = timedelta(days=90)  # events and purchases seen in the last 90 days (spec braze §5.5)
HEARTBEAT = timedelta(seconds=5)
STALE = timedelta(minutes=2)  # a running export without a heartbeat this long has died
PREFIX = re.compile(r"^[0-9a-f-]{36}-\d{1,12}$")
ALREADY_RUNNING = "An export of this segment is already running; retry when it has finished"


def _bad(message: str) -> BrazeError:
    return BrazeError(400, message)


@dataclass(frozen=True)
class ExportRequest:
    segment_id: str
    fields: list[str]
    custom_attributes: list[str] | None
    callback_endpoint: str | None


def _strings(payload: dict[str, Any], key: str) -> list[str] | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"'{key}' must be an array of strings")
    return list(dict.fromkeys(value))


def prepare(payload: dict[str, Any]) -> ExportRequest:
    segment_id = payload.get("segment_id")
    if not isinstance(segment_id, str) or not segment_id:
        raise _bad("'segment_id' is required")
    fields = _strings(payload, "fields_to_export")
    if not fields:
        raise _bad("'fields_to_export' is required: name the user fields to export")
    unknown = sorted(set(fields) - KNOWN_FIELDS)
    if unknown:
        raise _bad(f"Invalid fields in 'fields_to_export': {', '.join(unknown)}")
    custom = _strings(payload, "custom_attributes_to_export")
    if custom is not None and len(custom) > MAX_CUSTOM_ATTRIBUTES:
        raise _bad(f"'custom_attributes_to_export' holds at most {MAX_CUSTOM_ATTRIBUTES} names")
    output = payload.get("output_format", "zip")
    if output == "gzip":
        raise _bad("output_format 'gzip' needs an S3 bucket of your own; use 'zip'")
    if output != "zip":
        raise _bad("'output_format' must be 'zip'")
    callback = payload.get("callback_endpoint")
    if callback is not None and not (
        isinstance(callback, str) and re.match(r"^https?://[^\s]+$", callback)
    ):
        raise _bad("'callback_endpoint' must be an http(s) URL")
    return ExportRequest(segment_id, fields, custom, callback)


def download_url(base_url: str, object_prefix: str) -> str:
    return f"{base_url.rstrip('/')}/exports/segments/{object_prefix}.zip"


async def start(
    conn: AsyncConnection, workspace_id: str, request: ExportRequest, base_url: str
) -> tuple[str, dict[str, Any]]:
    """Record the running export; the caller starts the job once this has committed."""
    segment = await found(conn, workspace_id, request.segment_id)
    now = utcnow()
    await _release_if_stale(conn, workspace_id, segment["id"], now)
    export_id = str(uuid.uuid4())
    object_prefix = f"{uuid.uuid4()}-{int(now.timestamp())}"
    claimed = await repo.claim(conn, {
        "id": export_id, "workspace_id": workspace_id, "segment_id": segment["id"],
        "object_prefix": object_prefix, "status": "running", "running_segment": segment["id"],
        "fields": request.fields, "custom_attributes": request.custom_attributes,
        "callback_endpoint": request.callback_endpoint, "started_at": now, "heartbeat_at": now,
    })  # fmt: skip
    if not claimed:
        raise BrazeError(429, ALREADY_RUNNING)
    url = download_url(base_url, object_prefix)
    return export_id, {"message": "success", "object_prefix": object_prefix, "url": url}


async def _release_if_stale(
    conn: AsyncConnection, workspace_id: str, segment_id: str, now: datetime
) -> None:
    current = await repo.running(conn, workspace_id, segment_id)
    if current is None:
        return
    if now - current["heartbeat_at"] < STALE:
        raise BrazeError(429, ALREADY_RUNNING)
    await repo.finish(
        conn, current["id"], status="failed", at=now, users=current["users"],
        error="the process running it stopped",
    )  # fmt: skip


def _narrow(user: dict[str, Any], fields: frozenset[str], custom: list[str] | None) -> None:
    """``custom_attributes_to_export`` picks attributes, unless all were asked for."""
    if custom is not None and "custom_attributes" not in fields:
        chosen = {k: v for k, v in user.pop("custom_attributes", {}).items() if k in custom}
        if chosen:
            user["custom_attributes"] = chosen


async def pages(
    db: Database,
    segment: RowMapping,
    fields: list[str],
    custom: list[str] | None = None,
    *,
    page_size: int = PAGE,
) -> AsyncIterator[tuple[int, bytes]]:
    """The segment's members as newline-delimited export objects, a page at a time, in id
    order: (users, text)."""
    wanted = frozenset(fields)
    # custom_attributes_to_export picks attributes: those pages are built in Python.
    narrowed = custom is not None and "custom_attributes" not in wanted
    now = utcnow()
    since = now - HISTORY
    # A long export on a SQLite file reads its later pages in reader processes.
    processes = db.processes if not narrowed and line_fields(wanted) is not None else None

    async def page(ids: Sequence[int], number: int) -> tuple[int, bytes]:
        if processes is not None and number >= IN_PROCESS_PAGES:
            return await export_ndjson_in(processes, ids, wanted, history_since=since)
        async with db.read() as conn:
            if not narrowed:
                return await export_ndjson(conn, ids, wanted, history_since=since)
            asked = wanted | {"custom_attributes"}
            users = await export_users(conn, ids, asked, history_since=since)
        for user in users:
            _narrow(user, wanted, custom)
        return len(users), ndjson(users)

    def ahead(number: int) -> int:
        if processes is not None and number >= IN_PROCESS_PAGES:
            return processes.workers
        return READS_AHEAD.get(db.dialect, 1)

    # The audience is evaluated once and its ids streamed; each page is read on a connection
    # of its own while the caller writes the one before: the database's share of a page
    # (PostgreSQL's processes, SQLite's C code outside the GIL) overlaps ours.
    async with db.read() as id_conn:
        tree, scope = await audience_of(id_conn, segment, now)
        reading: deque[asyncio.Task[tuple[int, bytes]]] = deque()
        try:
            number = 0
            async for ids in audience.stream_members(id_conn, tree, scope, page_size):
                done = await reading.popleft() if len(reading) >= ahead(number) else None
                reading.append(asyncio.create_task(page(ids, number)))
                number += 1
                if done is not None:
                    yield done
            while reading:
                done = await reading[0]
                reading.popleft()
                yield done
        finally:
            for task in reading:
                task.cancel()  # the export stopped early: its connection closes as it ends


def export_path(exports_dir: Path, object_prefix: str) -> Path:
    if not PREFIX.match(object_prefix):
        raise ValueError(f"not an export: {object_prefix!r}")
    return exports_dir / f"{object_prefix}.zip"


Progress = Callable[[int], None]


async def write_zip(
    db: Database,
    segment: RowMapping,
    target: Path,
    fields: list[str],
    *,
    custom: list[str] | None = None,
    on_page: Progress | None = None,
) -> int:
    """Write the export zip atomically (a partial file never appears under the name)."""
    partial = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        part = 0
        async for users, data in pages(db, segment, fields, custom):
            name = f"{segment['id']}-{part:05d}.json"
            # Compression releases the GIL: off the event loop, the server keeps answering.
            await asyncio.to_thread(zf.writestr, name, data)
            part += 1
            count += users
            if on_page is not None:
                on_page(count)
    os.replace(partial, target)
    return count


async def run(
    db: Database,
    export_id: str,
    *,
    exports_dir: Path,
    base_url: str,
    client: httpx.AsyncClient | None = None,
) -> None:
    """The export job (``segments.export``): write the file, record the result, call back."""
    async with db.read() as conn:
        job = await repo.get(conn, export_id)
        segment = await found(conn, None, job["segment_id"]) if job is not None else None
    if job is None or segment is None or job["status"] != "running":
        return
    beat = _Heartbeat(db, export_id)
    try:
        users = await write_zip(
            db, segment, export_path(exports_dir, job["object_prefix"]), job["fields"],
            custom=job["custom_attributes"], on_page=beat.page,
        )  # fmt: skip
    except Exception as error:
        await _finish(db, export_id, "failed", beat.users, f"{type(error).__name__}: {error}")
        await _callback(job["callback_endpoint"], {"success": False}, client)
        raise
    await beat.flush()
    await _finish(db, export_id, "done", users, None)
    url = download_url(base_url, job["object_prefix"])
    await _callback(job["callback_endpoint"], {"success": True, "url": url}, client)


class _Heartbeat:
    """Marks the export alive (and its progress) every few seconds while it runs."""

    def __init__(self, db: Database, export_id: str) -> None:
        self.db = db
        self.export_id = export_id
        self.users = 0
        self.last = time.monotonic()
        self.pending: set[asyncio.Task[None]] = set()

    def page(self, users: int) -> None:
        self.users = users
        if time.monotonic() - self.last >= HEARTBEAT.total_seconds():
            self.last = time.monotonic()
            task = asyncio.get_running_loop().create_task(self._beat())
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)

    async def _beat(self) -> None:
        async with self.db.transaction() as conn:
            await repo.heartbeat(conn, self.export_id, utcnow(), self.users)

    async def flush(self) -> None:
        await asyncio.gather(*self.pending, return_exceptions=True)


async def _finish(db: Database, export_id: str, status: str, users: int, error: str | None) -> None:
    async with db.transaction() as conn:
        await repo.finish(conn, export_id, status=status, at=utcnow(), users=users, error=error)


CALLBACK_ATTEMPTS = 3


async def _callback(
    endpoint: str | None, body: dict[str, Any], client: httpx.AsyncClient | None
) -> None:
    """POST the outcome; a few tries with backoff, then give up (the export itself stands)."""
    if endpoint is None:
        return
    own = client is None
    http = client or httpx.AsyncClient(timeout=10.0)
    try:
        for attempt in range(CALLBACK_ATTEMPTS):
            try:
                response = await http.post(endpoint, json=body)
                if response.status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5 * 2**attempt)
    finally:
        if own:
            await http.aclose()


async def downloadable(
    conn: AsyncConnection, exports_dir: Path, object_prefix: str, ttl: timedelta
) -> Path:
    """The file behind a download URL, while it is valid; 404 otherwise."""
    job = await repo.by_prefix(conn, object_prefix) if PREFIX.match(object_prefix) else None
    if job is None:
        raise BrazeError(404, "Export not found")
    if job["status"] == "running":
        raise BrazeError(404, "Export not ready yet; retry later or use callback_endpoint")
    path = export_path(exports_dir, object_prefix)
    if job["status"] != "done" or utcnow() - job["finished_at"] > ttl or not path.exists():
        raise BrazeError(404, "Export not found or expired")
    return path


def remove_expired(exports_dir: Path, ttl: timedelta) -> int:
    """Delete export files past their validity (called when a new export starts)."""
    if not exports_dir.is_dir():
        return 0
    cutoff = time.time() - ttl.total_seconds()
    removed = 0
    for path in exports_dir.glob("*.zip*"):
        if path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
