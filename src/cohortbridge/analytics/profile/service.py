"""The User Profile API's answer (spec amplitude §5). Never commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.cohorts.repository import membership
from cohortbridge.analytics.computations import service as computations
from cohortbridge.analytics.identity import repository as identities

NOT_SEEN = "User id and device id not seen before"


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1", "yes")


def amp_props(user: dict[str, Any]) -> dict[str, Any]:
    """The user's properties with the defaults Amplitude adds (device fields, first/last used)."""
    props: dict[str, Any] = {**user["device_properties"], **user["user_properties"]}
    if user["first_seen_at"] is not None:
        props["first_used"] = user["first_seen_at"].date().isoformat()
    if user["last_seen_at"] is not None:
        props["last_used"] = user["last_seen_at"].date().isoformat()
    return props


async def profile(
    conn: AsyncConnection, project_id: int, params: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    user_id, device_id = params.get("user_id") or None, params.get("device_id") or None
    if user_id is None and device_id is None:
        return 400, {"error": "user_id or device_id is required"}
    user = await identities.find_user(conn, project_id, user_id=user_id, device_id=device_id)
    if user is None:
        return 200, {"error": NOT_SEEN}
    wants_props = _truthy(params.get("get_amp_props"))
    chosen = [c for c in (params.get("comp_id") or "").split(",") if c]
    wants_computations = _truthy(params.get("get_computations")) or bool(chosen)
    props = amp_props(user) if wants_props else ({} if wants_computations else None)
    if props is not None and wants_computations:
        props.update(await computations.profile_values(
            conn, project_id, user["amplitude_id"], chosen or None))  # fmt: skip
    return 200, {"userData": {
        "recommendations": None,
        "user_id": user["user_id"],
        "device_id": device_id or await identities.last_device(conn, user["amplitude_id"]),
        "amp_props": props,
        "cohort_ids": await membership.profile_cohorts(conn, user["amplitude_id"])
        if _truthy(params.get("get_cohort_ids")) else None,
    }}  # fmt: skip
