"""Computations: computed user properties (spec amplitude §4.3). Never commits."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.cohorts.logic.definition import InvalidDefinition
from cohortbridge.analytics.cohorts.repository import audience
from cohortbridge.analytics.cohorts.service import REFRESH, new_id
from cohortbridge.analytics.computations import logic
from cohortbridge.analytics.computations import repository as repo
from cohortbridge.analytics.http import DashboardError
from cohortbridge.analytics.projects import repository as projects
from cohortbridge.kit.clock import utcnow


def _invalid(message: str, **metadata: Any) -> DashboardError:
    return DashboardError(400, "invalid_request", message, **metadata)


async def create(conn: AsyncConnection, project_id: int, payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise _invalid("The body must be a JSON object")
    name = payload.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise _invalid("'name' must be a non-empty string: the user property it becomes")
    spec = {k: v for k, v in payload.items() if k not in ("name", "refresh")}
    try:
        logic.parse(spec)
    except InvalidDefinition as error:
        raise _invalid(f"Invalid computation at {error.path}: {error.reason}", path=error.path,
                       reason=error.reason) from error  # fmt: skip
    refresh = payload.get("refresh", "hourly")
    if refresh not in REFRESH:
        raise _invalid(f"'refresh' must be one of {', '.join(REFRESH)}")
    now = utcnow()
    computation_id = new_id()
    await repo.insert_computation(conn, {
        "id": computation_id, "project_id": project_id, "name": name, "spec": spec,
        "refresh_s": REFRESH[refresh], "next_compute_at": now, "created_at": now,
    })  # fmt: skip
    return {"id": computation_id}


async def compute(conn: AsyncConnection, row: RowMapping, now: datetime | None = None) -> int:
    """Recompute the values; the number of users that have one."""
    moment = now or utcnow()
    scope = audience.Scope(
        dialect=conn.dialect.name, project_id=row["project_id"], now=moment,
        inactive=frozenset(await projects.inactive_types(conn, row["project_id"])),
    )  # fmt: skip
    users = await repo.compute(conn, row["pk"], logic.parse(row["spec"]), scope)
    await repo.mark_computed(conn, row["pk"], moment,
                             moment + timedelta(seconds=row["refresh_s"]))  # fmt: skip
    return users


async def found(conn: AsyncConnection, project_id: int, computation_id: str) -> RowMapping:
    row = await repo.get(conn, project_id, computation_id)
    if row is None:
        raise DashboardError(404, "not_found", f"Computation {computation_id} not found")
    return row


def listing_object(row: RowMapping) -> dict[str, Any]:
    computed = row["computed_at"]
    return {"id": row["id"], "name": row["name"], **row["spec"], "refresh_s": row["refresh_s"],
            "lastComputed": int(computed.timestamp()) if computed else None}  # fmt: skip


async def profile_values(
    conn: AsyncConnection, project_id: int, amplitude_id: int, ids: list[str] | None
) -> dict[str, str | None]:
    """Computation id → value as a string, as the User Profile API shows them."""
    values = await repo.values_for(conn, project_id, amplitude_id, ids)
    return {key: logic.as_string(value) for key, value in values.items()}
