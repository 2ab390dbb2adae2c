"""The partner cohort import: name a cohort, change its members. Never commits."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.engage.cohorts import logic
from cohortbridge.engage.cohorts import repository as repo
from cohortbridge.engage.cohorts.schemas import CohortListing
from cohortbridge.engage.datapoints import service as datapoints
from cohortbridge.engage.errors import BrazeError
from cohortbridge.engage.partners.service import PartnerClient
from cohortbridge.kit.clock import utcnow


def _bad(error: logic.CohortRequestError) -> BrazeError:
    return BrazeError(400, str(error))


async def name_cohort(
    conn: AsyncConnection, client: PartnerClient, payload: dict[str, Any], lock_timeout_s: float
) -> dict[str, Any]:
    """POST /partners/{partner}/cohorts: create or rename; idempotent."""
    try:
        named = logic.parse_name(payload)
    except logic.CohortRequestError as error:
        raise _bad(error) from error
    now = utcnow()
    await repo.ensure_cohort(conn, client.workspace_id, client.partner, named.cohort_id, now)
    row = await repo.lock_cohort(
        conn, client.workspace_id, client.partner, named.cohort_id, lock_timeout_s
    )
    await repo.set_name(conn, row["id"], named.name, named.created_at, now)
    return {"message": "success"}


async def _match(
    conn: AsyncConnection, workspace_id: str, changes: list[logic.Change]
) -> dict[logic.IdKey, int]:
    wanted: dict[str, set[Any]] = defaultdict(set)
    for change in changes:
        for kind, value in change.identifiers():
            wanted[kind].add(value)
    matches: dict[logic.IdKey, int] = {}
    if wanted["external_id"]:
        found = await repo.ids_by_external_id(conn, workspace_id, list(wanted["external_id"]))
        matches.update({("external_id", k): v for k, v in found.items()})
    if wanted["device_id"]:
        devices = await repo.anonymous_ids_by_device(conn, workspace_id, list(wanted["device_id"]))
        matches.update({("device_id", k): v for k, v in devices.items()})
    if wanted["user_alias"]:
        aliases = await repo.ids_by_alias(conn, workspace_id, list(wanted["user_alias"]))
        matches.update({("user_alias", k): v for k, v in aliases.items()})
    return matches


async def change_users(
    conn: AsyncConnection, client: PartnerClient, payload: dict[str, Any], lock_timeout_s: float
) -> dict[str, Any]:
    """POST /partners/{partner}/cohorts/users: the whole request applies, or nothing does."""
    try:
        cohort_id = logic.cohort_id_of(payload)
        changes = logic.parse_changes(payload)
    except logic.CohortRequestError as error:
        raise _bad(error) from error
    body: dict[str, Any] = {"message": "success", "cohort_id": cohort_id, "matched": 0,
                            "unmatched": 0, "users_added": 0, "users_removed": 0}  # fmt: skip
    if not changes:
        return body  # partners send an empty change list to test their credentials
    now = utcnow()
    await repo.ensure_cohort(conn, client.workspace_id, client.partner, cohort_id, now)
    row = await repo.lock_cohort(
        conn, client.workspace_id, client.partner, cohort_id, lock_timeout_s
    )
    outcome = logic.resolve_changes(changes, await _match(conn, client.workspace_id, changes))
    members = await repo.members_among(conn, row["id"], list(outcome.intent))
    added, removed = logic.membership_delta(outcome.intent, members)
    await repo.add_members(conn, row["id"], added, now)
    await repo.remove_members(conn, row["id"], removed)
    await repo.add_to_size(conn, row["id"], len(added) - len(removed), now)
    source = datapoints.cohort_import_source(client.partner)
    await datapoints.record(conn, client.workspace_id, now, source, outcome.matched)
    body.update(matched=outcome.matched, unmatched=outcome.unmatched,
                users_added=len(added), users_removed=len(removed))  # fmt: skip
    return body


async def list_cohorts(conn: AsyncConnection, workspace_id: str) -> list[CohortListing]:
    return [
        CohortListing(
            partner=row["partner"],
            cohort_id=row["cohort_id"],
            name=row["name"],
            title=logic.display_title(row["display_name"], row["name"], row["cohort_id"]),
            size=int(row["size"]),
            created_at=row["partner_created_at"] or row["created_at"],
            updated_at=row["updated_at"],
        )
        for row in await repo.list_cohorts(conn, workspace_id)
    ]


async def members(
    conn: AsyncConnection, workspace_id: str, partner: str, cohort_id: str
) -> list[str | None]:
    """External ids of a cohort's members (None for anonymous ones), for tests and exports."""
    for row in await repo.list_cohorts(conn, workspace_id):
        if row["partner"] == partner and row["cohort_id"] == cohort_id:
            return await repo.member_external_ids(conn, row["id"])
    return []
