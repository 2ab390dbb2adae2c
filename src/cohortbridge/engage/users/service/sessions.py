"""Device sessions reported by apps: how anonymous devices arrive and get identified.

Braze's SDKs open a session on a new device with an anonymous profile and call
``changeUser(external_id)`` to identify it (spec braze §4). ``POST /sdk/sessions`` is our
small stand-in for that traffic (docs/api.md): the app names the device, and optionally the
user now using it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.db.unit import call
from cohortbridge.engage.datapoints import service as datapoints
from cohortbridge.engage.errors import BrazeError, RetryTransaction
from cohortbridge.engage.users import repository as repo
from cohortbridge.engage.users.logic.attributes import ProfileState
from cohortbridge.engage.users.logic.identifiers import Ident, InvalidObject, check_external_id
from cohortbridge.engage.users.logic.times import format_time
from cohortbridge.engage.users.service.identity import merge_profiles
from cohortbridge.engage.users.service.resolve import existing_ids
from cohortbridge.engage.users.service.track import new_profile_row
from cohortbridge.kit.clock import utcnow
from cohortbridge.kit.ids import object_id

SDK_SOURCE = "sdk"


@dataclass(frozen=True)
class Session:
    app_id: str
    device_id: str
    external_id: str | None


def prepare(payload: dict[str, Any]) -> Session:
    app_id, device_id = payload.get("app_id"), payload.get("device_id")
    if not isinstance(app_id, str) or not app_id:
        raise BrazeError(400, "'app_id' is required")
    if not isinstance(device_id, str) or not 1 <= len(device_id.encode()) <= 255:
        raise BrazeError(400, "'device_id' must be a string of 1 to 255 bytes")
    external_id = payload.get("external_id")
    try:
        checked = None if external_id is None else check_external_id(external_id)
    except InvalidObject as error:
        raise BrazeError(400, str(error)) from error
    return Session(app_id=app_id, device_id=device_id, external_id=checked)


async def record(conn: AsyncConnection, workspace_id: str, session: Session) -> dict[str, Any]:
    """Open a session: a new device gets an anonymous profile; an external id identifies it."""
    now = utcnow()
    holder = await repo.device_profile(conn, workspace_id, session.device_id)
    if holder is None:
        profile_id = await _anonymous_profile(conn, workspace_id, now)
    else:
        profile_id = int(holder["id"])
    if session.external_id is not None:
        current = None if holder is None else holder["external_id"]
        profile_id = await _change_user(
            conn, workspace_id, profile_id, current, session.external_id
        )
    await call(
        conn, repo.upsert_devices,
        [{"workspace_id": workspace_id, "device_id": session.device_id, "profile_id": profile_id,
          "app_id": session.app_id, "push_token": None, "created_at": now, "last_seen_at": now}],
    )  # fmt: skip
    await _stamp_session(conn, profile_id, now)
    await call(conn, datapoints.record, workspace_id, now, SDK_SOURCE, 1)
    return {
        "message": "success",
        "braze_id": await repo.braze_id_of(conn, profile_id),
        "external_id": await repo.external_id_of(conn, profile_id),
    }


async def _anonymous_profile(conn: AsyncConnection, workspace_id: str, now: datetime) -> int:
    row = new_profile_row(workspace_id, object_id(), None, ProfileState(), now)
    inserted = await call(conn, repo.insert_profiles, [row])
    return next(iter(inserted.values()))


async def _change_user(
    conn: AsyncConnection, workspace_id: str, profile_id: int, current: str | None, external_id: str
) -> int:
    """``changeUser``: the profile the device belongs to from now on (spec braze §4)."""
    if current == external_id:
        return profile_id
    found = await existing_ids(conn, workspace_id, [Ident("external_id", external_id)])
    known = found.get(("external_id", external_id))
    if current is None and known is None:
        # The anonymous profile becomes the identified one, keeping its history.
        if not await repo.set_external_id(conn, profile_id, external_id, utcnow()):
            raise RetryTransaction("the external id was taken concurrently")
        return profile_id
    if current is None and known is not None:
        await merge_profiles(conn, workspace_id, profile_id, known)
        return known
    # Another user on a device that was already identified: the device moves to that user
    # (created if new); nothing is copied from the previous one.
    if known is not None:
        return known
    row = new_profile_row(workspace_id, object_id(), external_id, ProfileState(), utcnow())
    inserted = await call(conn, repo.insert_profiles, [row])
    if not inserted:
        raise RetryTransaction("the external id was taken concurrently")
    return next(iter(inserted.values()))


async def _stamp_session(conn: AsyncConnection, profile_id: int, now: datetime) -> None:
    states = await call(conn, repo.load_states, [profile_id], lock=True)
    row = states[profile_id]
    document = dict(row["standard"] or {})
    document.setdefault("date_of_first_session", format_time(now))
    document["date_of_last_session"] = format_time(now)
    await call(
        conn, repo.update_states,
        [{"pid": profile_id, **{name: row[name] for name in repo.STATE_COLUMNS},
          "standard": document, "custom_attributes": row["custom_attributes"] or {},
          "updated_at": now}],
    )  # fmt: skip
