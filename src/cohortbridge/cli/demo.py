"""The demo ``up`` seeds on an empty data directory: both sides wired together as the
integration is in production, so the story can be watched at once.

engage gets demo profiles, Amplitude's partner key and a data import key; analytics gets demo
events, a behavioral cohort, a Braze destination pointing at engage and two real-time cohort
syncs (by user id and by device id), an event stream of "Song Played" (with its genre) and a
daily sync of the user property ``plan``, both through a REST API key named
``amplitude-stream``; engage gets a segment "Amplitude Cohorts includes" that cohort. The
analytics tick computes the cohort and syncs it within a minute or two; the stream forwards the
demo's plays within seconds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from cohortbridge.cli.runtime import run_in_transaction
from cohortbridge.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

STREAM_KEY = "amplitude-stream"
USERS = 40
ANONYMOUS = 10
COHORT = {"andClauses": [{"orClauses": [{"type": "event", "type_value": "Song Played",
                                          "operator": ">=", "operator_value": 2,
                                          "time_type": "rolling", "time_value": 30}]}]}  # fmt: skip


@dataclass
class Demo:
    cohort_id: str
    segment_id: str
    sync_ids: list[str]
    expected: int
    stream_id: str = ""
    plays: int = 0


def _people() -> tuple[list[str], list[str]]:
    return [f"demo-user-{i:02d}" for i in range(USERS)], [
        f"demo-device-{i:02d}" for i in range(ANONYMOUS)
    ]


async def _engage_side(conn: AsyncConnection, workspace_id: str, app_id: str) -> dict[str, str]:
    from cohortbridge.db.unit import call
    from cohortbridge.engage.partners import service as partners
    from cohortbridge.engage.users.service import track
    from cohortbridge.engage.workspaces import service as workspaces

    users, devices = _people()
    await call(conn, track.apply, workspace_id, track.prepare({"attributes": [
        *({"external_id": user, "first_name": user.split("-")[-1]} for user in users),
        *({"push_token_import": True, "push_tokens": [
            {"app_id": app_id, "token": f"token-{d}", "device_id": d}]} for d in devices),
    ]}))  # fmt: skip
    partner = await partners.create_partner_key(conn, "amplitude")
    secret = await partners.create_import_key(conn, workspace_id, "amplitude", "")
    rest = await workspaces.create_api_key(conn, workspace_id, ["users.track"], STREAM_KEY)
    return {"partner_api_key": partner.partner_api_key, "client_secret": secret.data_import_key,
            "rest_api_key": rest.rest_api_key, "app_id": app_id}  # fmt: skip


def _events(now_ms: int) -> list[dict[str, Any]]:
    """Most demo users and devices played songs lately, some once, some not at all."""
    chooser = random.Random(20261201)
    users, devices = _people()
    events: list[dict[str, Any]] = []
    for who, key in [*((u, "user_id") for u in users), *((d, "device_id") for d in devices)]:
        plays = chooser.choice([0, 1, 2, 3, 5])
        for n in range(plays):
            genre = chooser.choice(["rock", "jazz"])
            events.append({key: who, "event_type": "Song Played",
                           "time": now_ms - (n + 1) * 3_600_000,
                           "event_properties": {"genre": genre}})  # fmt: skip
        opened = {key: who, "event_type": "App Opened", "time": now_ms - 60_000}
        if key == "user_id":
            opened["user_properties"] = {"$set": {"plan": chooser.choice(["free", "premium"])}}
        events.append(opened)
    return events


def expected_members() -> int:
    return sum(1 for e in _count_plays().values() if e >= 2)


def streamed_plays() -> int:
    """The demo's plays of identified users: what the stream forwards to engage."""
    return sum(1 for e in _events(0) if e["event_type"] == "Song Played" and "user_id" in e)


def _count_plays() -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in _events(0):
        who = event.get("user_id") or event.get("device_id")
        counts.setdefault(str(who), 0)
        if event["event_type"] == "Song Played":
            counts[str(who)] += 1
    return counts


async def _analytics_side(
    conn: AsyncConnection, project_id: int, engage_url: str, keys: dict[str, str]
) -> tuple[str, list[str], str]:
    from cohortbridge.analytics.cohorts import service as cohorts
    from cohortbridge.analytics.destinations import service as destinations
    from cohortbridge.analytics.ingest import service as ingest
    from cohortbridge.analytics.ingest.logic.events import check_events
    from cohortbridge.kit.clock import utcnow

    now = utcnow()
    # The stream first: it forwards what is ingested from its creation on.
    stream_id, sync_id = await _streaming(conn, project_id, engage_url, keys)
    events, _problems = check_events(_events(int(now.timestamp() * 1000)), min_id_length=5,
                                     now=now)  # fmt: skip
    await ingest.ingest(conn, ingest.Batch(project_id, events, now - timedelta(seconds=1)))
    draft = cohorts.prepare({"name": "Demo: played twice in 30 days", "definition": COHORT,
                             "refresh": "minute"}, creating=True)  # fmt: skip
    cohort_id = str((await cohorts.create(conn, project_id, draft))["cohortId"])
    destination = await destinations.create_destination(
        conn, project_id, rest_endpoint=engage_url, data_import_key=keys["client_secret"],
        partner_api_key=keys["partner_api_key"], name="engage (demo)",
    )  # fmt: skip
    syncs = [
        (await destinations.create_sync(conn, cohort_id=cohort_id,
                                        destination_id=destination["destination_id"],
                                        cadence="realtime", identifiers=[identifier]))["sync_id"]
        for identifier in ("user_id", "device_id")
    ]  # fmt: skip
    return cohort_id, [*syncs, sync_id], stream_id


async def _streaming(
    conn: AsyncConnection, project_id: int, engage_url: str, keys: dict[str, str]
) -> tuple[str, str]:
    from cohortbridge.analytics.destinations import service as destinations
    from cohortbridge.analytics.streams import service as streams
    from cohortbridge.analytics.traits import service as traits

    destination = await destinations.create_destination(
        conn, project_id, rest_endpoint=engage_url, data_import_key=None, partner_api_key=None,
        rest_api_key=keys["rest_api_key"], app_id=keys["app_id"], name="engage /users/track (demo)",
    )  # fmt: skip
    stream = await streams.create_stream(
        conn, destination_id=destination["destination_id"], name="Demo: plays",
        config={"event_types": ["Song Played"], "event_properties": ["genre"]},
    )  # fmt: skip
    sync = await traits.create_sync(
        conn, destination_id=destination["destination_id"], cadence="daily",
        identifier={"property": "user_id", "type": "external_id"}, user_property="plan",
    )  # fmt: skip
    return str(stream["stream_id"]), str(sync["sync_id"])


async def _segment(conn: AsyncConnection, workspace_id: str, cohort_id: str) -> str:
    from cohortbridge.engage.segments.service import definitions

    draft = definitions.prepare_create({"name": "Demo: Amplitude cohort", "filter": {
        "amplitude_cohorts": {"comparison": "includes_value", "value": cohort_id}}})  # fmt: skip
    return str((await definitions.create(conn, workspace_id, draft))["segment_id"])


def seed(settings: Settings, workspace_id: str, app_id: str, project_id: int) -> Demo:
    """Seed both sides (each in its own transaction, engage first: the cohort must find users)."""

    async def engage_work(conn: AsyncConnection) -> Any:
        return await _engage_side(conn, workspace_id, app_id)

    keys = run_in_transaction(settings, "engage", engage_work)

    async def analytics_work(conn: AsyncConnection) -> Any:
        return await _analytics_side(conn, project_id, settings.public_url("engage"), keys)

    cohort_id, sync_ids, stream_id = run_in_transaction(settings, "analytics", analytics_work)

    async def segment_work(conn: AsyncConnection) -> Any:
        return await _segment(conn, workspace_id, cohort_id)

    segment_id = run_in_transaction(settings, "engage", segment_work)
    return Demo(cohort_id, segment_id, sync_ids, expected_members(), stream_id, streamed_plays())
