"""The partner cohort import: name a cohort, change its members. Never commits: the writes
are synchronous units of work (db/unit.py) that the endpoint runs in one transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.db.unit import Executor
from cohortbridge.engage.cohorts import logic
from cohortbridge.engage.cohorts import repository as repo
from cohortbridge.engage.cohorts.schemas import CohortListing
from cohortbridge.engage.datapoints import service as datapoints
from cohortbridge.engage.errors import BrazeError
from cohortbridge.engage.partners.service import PartnerClient
from cohortbridge.kit.clock import utcnow


def _bad(error: logic.CohortRequestError) -> BrazeError:
    return BrazeError(400, str(error))


def prepare_name(payload: dict[str, Any]) -> logic.NameUpdate:
    try:
        return logic.parse_name(payload)
    except logic.CohortRequestError as error:
        raise _bad(error) from error


def name_cohort(
    ex: Executor, client: PartnerClient, named: logic.NameUpdate, lock_timeout_s: float
) -> dict[str, Any]:
    """POST /partners/{partner}/cohorts: create or rename; idempotent."""
    now = utcnow()
    pk, _version = repo.open_cohort(
        ex, client.workspace_id, client.partner, named.cohort_id, now=now,
        timeout_s=lock_timeout_s,
    )  # fmt: skip
    repo.set_name(ex, pk, named.name, named.created_at, now)
    return {"message": "success"}


def prepare_changes(payload: dict[str, Any]) -> tuple[str, list[logic.Change]]:
    """The cohort id and change objects, validated before any transaction opens."""
    try:
        return logic.cohort_id_of(payload), logic.parse_changes(payload)
    except logic.CohortRequestError as error:
        raise _bad(error) from error


def change_users(
    ex: Executor,
    client: PartnerClient,
    prepared: tuple[str, list[logic.Change]],
    lock_timeout_s: float,
) -> dict[str, Any]:
    """POST /partners/{partner}/cohorts/users: the whole request applies, or nothing does.

    Change objects apply in array order, each id group in one set-based statement: never a
    round trip per id, and never a profile created.
    """
    cohort_id, changes = prepared
    tally = logic.Tally()
    if changes:  # an empty change list is how partners test their credentials
        _apply(ex, client, cohort_id, changes, tally=tally, lock_timeout_s=lock_timeout_s)
    return {"message": "success", "cohort_id": cohort_id, "matched": tally.matched,
            "unmatched": tally.unmatched, "users_added": tally.added,
            "users_removed": tally.removed}  # fmt: skip


def _apply(
    ex: Executor,
    client: PartnerClient,
    cohort_id: str,
    changes: list[logic.Change],
    *,
    tally: logic.Tally,
    lock_timeout_s: float,
) -> None:
    now = utcnow()
    pk, version = repo.open_cohort(
        ex, client.workspace_id, client.partner, cohort_id, now=now, timeout_s=lock_timeout_s
    )
    for change in changes:
        for kind, values in change.groups():
            if change.remove:
                matched, removed = repo.remove_matching(ex, pk, client.workspace_id, kind, values)
                tally.record_removes(len(values), matched, removed)
            else:
                rows = repo.add_matching(
                    ex, pk, client.workspace_id, kind, values, version=version, now=now
                )
                tally.record_adds(len(values), rows)
    source = datapoints.cohort_import_source(client.partner)
    datapoints.record(ex, client.workspace_id, now, source, tally.matched)


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


async def titles(
    conn: AsyncConnection, workspace_id: str, keys: set[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """Display titles (spec braze §1.8) of the cohorts a segment names, as far as they exist."""
    rows = await repo.named(conn, workspace_id, sorted(keys))
    return {
        (row["partner"], row["cohort_id"]): logic.display_title(
            row["display_name"], row["name"], row["cohort_id"]
        )
        for row in rows
    }
