"""Cohort downloads (spec amplitude §3.2): request → poll → CSV file, written in the background.

The file has a header row ``amplitude_id,user_id`` and then the requested user properties
(``props=1`` with ``propKeys``, or every property the members have).
"""

from __future__ import annotations

import csv
import io
import os
import re
import uuid
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.cohorts.repository import downloads as repo
from cohortbridge.analytics.cohorts.repository import membership
from cohortbridge.analytics.cohorts.service import CohortError, found
from cohortbridge.db.engine import Database
from cohortbridge.kit.clock import utcnow

PAGE = 5000
REQUEST_ID = re.compile(r"^[0-9a-f-]{36}$")
IN_PROGRESS, COMPLETED = "JOB INPROGRESS", "JOB COMPLETED"


def wanted_props(params: dict[str, Any]) -> list[str] | None:
    """None: no property columns (props=0); [] : every property; else those named."""
    if str(params.get("props", "0")) != "1":
        return None
    keys = params.get("propKeys") or []
    return [str(key) for key in (keys if isinstance(keys, list) else [keys])]


async def request(
    conn: AsyncConnection, project_id: int, cohort_id: str, props: list[str] | None
) -> dict[str, Any]:
    row = await found(conn, project_id, cohort_id)
    request_id = str(uuid.uuid4())
    await repo.insert_request(conn, {
        "request_id": request_id, "cohort": row["pk"], "props": props, "status": "running",
        "requested_at": utcnow(),
    })  # fmt: skip
    return {"request_id": request_id, "cohort_id": row["id"]}


async def status(
    conn: AsyncConnection, project_id: int, request_id: str
) -> tuple[int, dict[str, Any]]:
    job = await repo.get(conn, project_id, request_id) if REQUEST_ID.match(request_id) else None
    if job is None:
        raise CohortError(404, "not_found", f"Request {request_id} not found")
    if job["status"] == "failed":
        raise CohortError(500, "internal", f"The download failed: {job['error']}")
    done = job["status"] == "done"
    body = {"request_id": request_id, "cohort_id": job["cohort_id"],
            "async_status": COMPLETED if done else IN_PROGRESS}  # fmt: skip
    return (200 if done else 202), body


def file_path(downloads_dir: Path, request_id: str) -> Path:
    if not REQUEST_ID.match(request_id):
        raise ValueError(f"not a request id: {request_id!r}")
    return downloads_dir / f"{request_id}.csv"


async def ready_file(
    conn: AsyncConnection, project_id: int, downloads_dir: Path, request_id: str
) -> Path:
    code, _body = await status(conn, project_id, request_id)
    path = file_path(downloads_dir, request_id)
    if code != 200 or not path.exists():
        raise CohortError(404, "not_found", "The file is not ready; poll request-status")
    return path


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


async def _columns(db: Database, cohort: int, props: list[str]) -> list[str]:
    if props:
        return props
    seen: dict[str, None] = {}
    after = 0
    while True:
        async with db.read() as conn:
            rows = await membership.members_page(conn, cohort, after, PAGE)
        if not rows:
            return list(seen)
        for row in rows:
            seen.update(dict.fromkeys(_props(row)))
        after = rows[-1]["amplitude_id"]


def _props(row: Any) -> dict[str, Any]:
    value = row["user_properties"] or {}
    return dict(orjson.loads(value) if isinstance(value, str | bytes) else value)


async def write(db: Database, downloads_dir: Path, request_id: str) -> None:
    """The download job (``cohorts.download``): write the CSV atomically, mark it done."""
    async with db.read() as conn:
        job = await repo.get_any(conn, request_id)
    if job is None or job["status"] != "running":
        return
    try:
        rows = await write_csv(db, job, file_path(downloads_dir, request_id))
    except Exception as error:
        async with db.transaction() as conn:
            await repo.finish(conn, request_id, status="failed", at=utcnow(), rows=None,
                              error=f"{type(error).__name__}: {error}")  # fmt: skip
        raise
    async with db.transaction() as conn:
        await repo.finish(conn, request_id, status="done", at=utcnow(), rows=rows)


async def write_csv(db: Database, job: Any, target: Path) -> int:
    """The members of ``job['cohort']`` as CSV at ``target`` (atomically); the row count."""
    props = job["props"]
    columns = await _columns(db, job["cohort"], props) if props is not None else []
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    count, after = 0, 0
    with partial.open("w", newline="", encoding="utf-8") as sink:
        out = csv.writer(sink)
        out.writerow(["amplitude_id", "user_id", *columns])
        while True:
            async with db.read() as conn:
                rows = await membership.members_page(conn, job["cohort"], after, PAGE)
            if not rows:
                break
            buffer = io.StringIO()
            page = csv.writer(buffer)
            for row in rows:
                values = _props(row) if columns else {}
                page.writerow([row["amplitude_id"], row["user_id"] or "",
                               *(_cell(values.get(c)) for c in columns)])  # fmt: skip
            sink.write(buffer.getvalue())
            count += len(rows)
            after = rows[-1]["amplitude_id"]
    os.replace(partial, target)
    return count
