"""Cohorts: behavioral definitions, static uploads, computation with entries and exits.
Never commits."""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.cohorts.logic import definition as d
from cohortbridge.analytics.cohorts.repository import audience, membership
from cohortbridge.analytics.cohorts.repository import definitions as repo
from cohortbridge.analytics.http import DashboardError
from cohortbridge.analytics.projects import repository as projects
from cohortbridge.kit.clock import utcnow

REFRESH = {"minute": 60, "hourly": 3600, "daily": 86400}
DEFAULT_REFRESH = "hourly"
# Deltas re-evaluate only changed users; everyone is recomputed at least this often anyway.
FULL_EVERY = timedelta(days=1)
MAX_IDS = 100_000  # Amplitude: single requests limited to 100,000 identifiers
ALPHABET = string.ascii_lowercase + string.digits


class CohortError(DashboardError):
    """An expected failure of the cohort APIs (Amplitude's error shape)."""


def invalid(message: str, **metadata: Any) -> CohortError:
    return CohortError(400, "invalid_request", message, **metadata)


def not_found(cohort_id: str) -> CohortError:
    return CohortError(404, "not_found", f"Cohort {cohort_id} not found", cohort_id=cohort_id)


def new_id() -> str:
    """Amplitude's cohort id shape: seven lowercase letters and digits."""
    return "".join(secrets.choice(ALPHABET) for _ in range(7))


@dataclass(frozen=True)
class Draft:
    name: str | None
    definition: Any
    parsed: d.Definition | None
    description: str | None
    refresh_s: int | None
    profile_api: bool | None


def _parse(raw: Any) -> d.Definition:
    try:
        return d.parse(raw)
    except d.InvalidDefinition as error:
        raise invalid(f"Invalid definition at {error.path}: {error.reason}", path=error.path,
                      reason=error.reason) from error  # fmt: skip


def prepare(payload: Any, *, creating: bool) -> Draft:
    if not isinstance(payload, dict):
        raise invalid("The body must be a JSON object")
    name = payload.get("name")
    if (name is not None or creating) and (
        not isinstance(name, str) or not name.strip() or len(name) > 255
    ):
        raise invalid("'name' must be a non-empty string of at most 255 characters")
    raw = payload.get("definition")
    if raw is None and creating:
        raise invalid('\'definition\' is required: {"andClauses": [{"orClauses": [...]}]}')
    refresh = payload.get("refresh")
    if refresh is not None and refresh not in REFRESH:
        raise invalid(f"'refresh' must be one of {', '.join(REFRESH)}")
    description, profile_api = payload.get("description"), payload.get("profile_api")
    if description is not None and not isinstance(description, str):
        raise invalid("'description' must be a string")
    if profile_api is not None and not isinstance(profile_api, bool):
        raise invalid("'profile_api' must be true or false")
    return Draft(
        name=name, definition=raw, parsed=_parse(raw) if raw is not None else None,
        description=description, refresh_s=REFRESH[refresh] if refresh else None,
        profile_api=profile_api,
    )  # fmt: skip


async def _references(
    conn: AsyncConnection, project_id: int, parsed: d.Definition, cohort_id: str | None
) -> list[int]:
    named = sorted(parsed.cohorts_named())
    found = {row["id"]: row["pk"] for row in await repo.many(conn, project_id, named)}
    for missing in named:
        if missing not in found:
            raise invalid(f"Invalid definition: part of cohort names an unknown cohort "
                          f"'{missing}'", cohort_id=missing)  # fmt: skip
    if cohort_id is not None:
        graph = await repo.reference_graph(conn, project_id)
        graph[cohort_id] = set(named)
        if d.has_cycle(cohort_id, graph):
            raise invalid("Invalid definition: part of cohort would make a cycle",
                          cohort_id=cohort_id)  # fmt: skip
    return [found[name] for name in named]


async def create(conn: AsyncConnection, project_id: int, draft: Draft) -> dict[str, Any]:
    assert draft.parsed is not None and draft.name is not None
    references = await _references(conn, project_id, draft.parsed, None)
    now = utcnow()
    cohort_id = new_id()
    pk = await repo.insert_cohort(conn, {
        "id": cohort_id, "project_id": project_id, "name": draft.name,
        "description": draft.description, "kind": "behavioral", "definition": draft.definition,
        "published": True, "archived": False, "profile_api": bool(draft.profile_api),
        "refresh_s": draft.refresh_s or REFRESH[DEFAULT_REFRESH], "next_compute_at": now,
        "version": 0, "size": 0, "created_at": now, "updated_at": now,
    })  # fmt: skip
    await repo.set_references(conn, pk, references)
    return {"cohortId": cohort_id}


async def found(conn: AsyncConnection, project_id: int, cohort_id: Any) -> RowMapping:
    row = await repo.get(conn, project_id, str(cohort_id)) if isinstance(cohort_id, str) else None
    if row is None:
        raise not_found(str(cohort_id))
    return row


async def update(
    conn: AsyncConnection, project_id: int, cohort_id: str, draft: Draft
) -> dict[str, Any]:
    row = await found(conn, project_id, cohort_id)
    if row["kind"] != "behavioral" and draft.parsed is not None:
        raise invalid("A static cohort has no definition; upload its ids instead")
    values: dict[str, Any] = {"updated_at": utcnow()}
    if draft.parsed is not None:
        await repo.set_references(
            conn, row["pk"], await _references(conn, project_id, draft.parsed, row["id"])
        )
        values["definition"] = draft.definition
        values["next_compute_at"] = utcnow()  # a new definition is computed at the next tick
        values["delta_since"] = None  # … for everyone
    changes = {"name": draft.name, "description": draft.description,
               "refresh_s": draft.refresh_s, "profile_api": draft.profile_api}  # fmt: skip
    values.update({key: value for key, value in changes.items() if value is not None})
    await repo.update_cohort(conn, row["pk"], values)
    return {"cohortId": row["id"]}


async def archive(conn: AsyncConnection, project_id: int, cohort_id: str) -> dict[str, Any]:
    row = await found(conn, project_id, cohort_id)
    await repo.update_cohort(conn, row["pk"], {"archived": True, "updated_at": utcnow()})
    return {"cohortId": row["id"], "archived": True}


@dataclass(frozen=True)
class Computed:
    cohort_id: str
    version: int
    size: int
    entered: int
    left: int
    # False when only the users changed since the last computation were re-evaluated.
    full: bool = True


async def compute(conn: AsyncConnection, row: RowMapping, now: datetime | None = None) -> Computed:
    """Recompute a behavioral cohort; record who entered and who left as a new version."""
    started = time.perf_counter()
    moment = now or utcnow()
    version = int(row["version"]) + 1
    if row["kind"] != "behavioral":
        return Computed(row["id"], int(row["version"]), int(row["size"]), 0, 0)
    scope = audience.Scope(
        dialect=conn.dialect.name, project_id=row["project_id"], now=moment,
        inactive=frozenset(await projects.inactive_types(conn, row["project_id"])),
    )  # fmt: skip
    definition = d.parse(row["definition"])
    query = audience.members_query(definition, scope)
    since = await _delta_since(conn, row, moment)
    if since is None:
        entered, left = await membership.compute(conn, row["pk"], version, query)
    else:
        candidates = audience.changed_users(definition, scope, since)
        per_user = audience.condition(definition, replace(scope, per_user=True))
        entered, left = await membership.compute_delta(conn, row["pk"], version, per_user,
                                                       candidates)  # fmt: skip
    return await _finish(conn, row, version, moment, entered=entered, left=left, started=started,
                         full=since is None)  # fmt: skip


async def _delta_since(conn: AsyncConnection, row: RowMapping, now: datetime) -> datetime | None:
    """Since when only the changed users need re-evaluating; None: compute everyone (the first
    time, after a new definition or a change of active event types, and at least daily)."""
    since: datetime | None = row["delta_since"]
    full: datetime | None = row["full_at"]
    if since is None or full is None or now - full >= FULL_EVERY or since > now:
        return None
    changed = await projects.activity_changed_at(conn, row["project_id"])
    if changed is not None and changed >= since - audience.MARGIN:
        return None
    return since


async def _finish(
    conn: AsyncConnection, row: RowMapping, version: int, moment: datetime, *, entered: int,
    left: int, started: float, full: bool = True,
) -> Computed:  # fmt: skip
    size = await membership.size(conn, row["pk"])
    await repo.update_cohort(conn, row["pk"], {
        "version": version, "size": size, "computed_at": moment, "updated_at": moment,
        "next_compute_at": moment + timedelta(seconds=row["refresh_s"]), "delta_since": moment,
        **({"full_at": moment} if full else {}),
    })  # fmt: skip
    await repo.record_computation(conn, {
        "cohort": row["pk"], "version": version, "computed_at": moment, "size": size,
        "entered": entered, "left": left,
        "duration_ms": int((time.perf_counter() - started) * 1000),
    })  # fmt: skip
    return Computed(row["id"], version, size, entered, left, full)


async def compute_by_id(conn: AsyncConnection, project_id: int, cohort_id: str) -> Computed:
    return await compute(conn, await found(conn, project_id, cohort_id))


async def _resolve_ids(
    conn: AsyncConnection, project_id: int, ids: Any, id_type: str
) -> tuple[list[int], list[str]]:
    """Amplitude IDs for uploaded ids (BY_AMP_ID / BY_ID, or BY_USER_ID / BY_NAME), and the
    ids that match no user."""
    if not isinstance(ids, list) or not all(isinstance(i, str | int) for i in ids):
        raise invalid("'ids' must be an array of ids")
    if len(ids) > MAX_IDS:
        raise invalid(f"At most {MAX_IDS:,} ids per request")
    if id_type in ("BY_AMP_ID", "BY_ID"):
        numeric = [int(i) for i in ids if str(i).isdigit()]
        known = await membership.users_by_amplitude_id(conn, project_id, numeric)
        return sorted(known), [str(i) for i in ids if not str(i).isdigit() or int(i) not in known]
    if id_type in ("BY_USER_ID", "BY_NAME"):
        by_user = await membership.users_by_user_id(conn, project_id, [str(i) for i in ids])
        return sorted(set(by_user.values())), [str(i) for i in ids if str(i) not in by_user]
    raise invalid("'id_type' must be BY_AMP_ID or BY_USER_ID")


async def upload(conn: AsyncConnection, project_id: int, payload: Any) -> dict[str, Any]:
    """``POST /api/3/cohorts/upload``: a static cohort from ids, or new contents for one."""
    if not isinstance(payload, dict):
        raise invalid("The body must be a JSON object")
    for key in ("name", "app_id", "id_type", "ids", "owner", "published"):
        if key not in payload:
            raise invalid(f"'{key}' is required", field=key)
    if payload["app_id"] != project_id:
        raise CohortError(403, "forbidden", "app_id is not the project of these credentials")
    matched, invalid_ids = await _resolve_ids(conn, project_id, payload["ids"],
                                              str(payload["id_type"]))  # fmt: skip
    if invalid_ids and payload.get("skip_invalid_ids", True) is False:
        raise invalid("Some ids match no user", invalid_ids_sample=invalid_ids[:10])
    metadata = {"matched": len(matched), "totals": len(payload["ids"]),
                "invalid_ids_sample": invalid_ids[:10]}  # fmt: skip
    if payload.get("skip_save"):
        return {"cohortId": None, "metadata": metadata}
    row = await _static_target(conn, project_id, payload)
    version = int(row["version"]) + 1
    entered, left = await membership.replace(conn, row["pk"], version, matched)
    done = await _finish(
        conn, row, version, utcnow(), entered=entered, left=left, started=time.perf_counter()
    )
    return {"cohortId": done.cohort_id, "metadata": metadata}


async def _static_target(conn: AsyncConnection, project_id: int, payload: dict[str, Any]) -> Any:
    existing = payload.get("existing_cohort_id")
    if existing:
        row = await found(conn, project_id, existing)
        if row["kind"] != "static":
            raise invalid("existing_cohort_id names a behavioral cohort")
        return row
    now = utcnow()
    pk = await repo.insert_cohort(conn, {
        "id": new_id(), "project_id": project_id, "name": str(payload["name"])[:255],
        "description": None, "kind": "static", "definition": None,
        "owner": str(payload["owner"])[:255], "published": bool(payload["published"]),
        "archived": False, "profile_api": False, "refresh_s": REFRESH["daily"],
        "next_compute_at": None, "version": 0, "size": 0, "created_at": now, "updated_at": now,
    })  # fmt: skip
    return await repo.by_pk(conn, pk)


async def update_membership(conn: AsyncConnection, project_id: int, payload: Any) -> dict[str, Any]:
    """``POST /api/3/cohorts/membership``: ADD and REMOVE ids, in order, as one new version."""
    if not isinstance(payload, dict) or not isinstance(payload.get("memberships"), list):
        raise invalid("'cohort_id' and 'memberships' are required")
    row = await found(conn, project_id, payload.get("cohort_id"))
    if payload.get("count_group", "User") != "User":
        raise invalid("count_group must be User")
    version = int(row["version"])
    results, entered, left = [], 0, 0
    # Each operation is a version of its own: an id added then removed in one request shows
    # both changes, in order, to whoever follows the cohort's versions.
    for index, item in enumerate(payload["memberships"]):
        if not isinstance(item, dict) or item.get("operation") not in ("ADD", "REMOVE"):
            raise invalid(f"memberships[{index}] needs ids, id_type and an operation "
                          "ADD or REMOVE")  # fmt: skip
        ids, skipped = await _resolve_ids(conn, project_id, item.get("ids"),
                                          str(item.get("id_type")))  # fmt: skip
        if skipped and payload.get("skip_invalid_ids", True) is False:
            raise invalid("Some ids match no user", invalid_ids_sample=skipped[:10])
        version += 1
        if item["operation"] == "ADD":
            entered += await membership.add(conn, row["pk"], version, ids)
        else:
            left += await membership.remove(conn, row["pk"], version, ids)
        results.append({"skipped_ids": skipped, "id_type": item["id_type"],
                        "operation": item["operation"]})  # fmt: skip
    await _finish(
        conn, row, version, utcnow(), entered=entered, left=left, started=time.perf_counter()
    )
    return {"cohort_id": row["id"], "memberships_result": results}
