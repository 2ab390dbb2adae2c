"""Counting billable writes (spec braze §6) and reporting them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.db.unit import Executor
from cohortbridge.engage.datapoints import repository as repo
from cohortbridge.kit.clock import utc_day

USERS_TRACK = "users_track"


def users_track_source(key_name: str) -> str:
    """``users_track``, or ``users_track:<key name>`` for a named REST API key."""
    return f"{USERS_TRACK}:{key_name}" if key_name else USERS_TRACK


def cohort_import_source(partner: str) -> str:
    return f"cohort_import:{partner}"


def record(ex: Executor, workspace_id: str, at: datetime, source: str, count: int) -> None:
    if count > 0:
        repo.add(ex, workspace_id, utc_day(at), source, count)


async def report(
    conn: AsyncConnection, workspace_id: str, since: date | None = None
) -> dict[str, Any]:
    """``{"total", "by_source", "days": [{"day", "source", "count"}]}``."""
    days = [
        {"day": row["day"].isoformat(), "source": row["source"], "count": int(row["count"])}
        for row in await repo.rows(conn, workspace_id, since)
    ]
    by_source: dict[str, int] = {}
    for row in days:
        by_source[row["source"]] = by_source.get(row["source"], 0) + row["count"]
    return {"total": sum(by_source.values()), "by_source": by_source, "days": days}
