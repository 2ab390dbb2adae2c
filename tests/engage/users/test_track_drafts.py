"""/users/track writes computed ahead of their transaction (``track.draft``): a draft whose
reads went stale is recomputed, never written as it was."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cohortbridge.db.engine import Database
from cohortbridge.db.unit import Executor
from cohortbridge.engage.users.service import track
from cohortbridge.engage.users.service.track import Draft
from tests.engage.users.helpers import export, one


def _draft(db: Database, workspace_id: str, body: dict[str, Any]) -> Any:
    plan = track.prepare(body)
    return db.lookup(lambda ex: track.draft(ex, workspace_id, plan))


async def _apply(db: Database, workspace_id: str, prepared: Any) -> dict[str, Any]:
    def unit(ex: Executor) -> dict[str, Any]:
        return track.apply(ex, workspace_id, prepared)

    return await db.write(unit)


# Reads by external id alone (one query for ids and states), and by ids then states.
BY_EXTERNAL_ID = {"attributes": [{"external_id": "u", "n": {"inc": 10}}]}
MIXED = {
    "attributes": [{"external_id": "u", "n": {"inc": 10}}],
    "events": [{"external_id": "v", "name": "open", "time": "2026-11-01T00:00:00Z"}],
}


@pytest.mark.parametrize("body", [BY_EXTERNAL_ID, MIXED], ids=["external-ids", "mixed"])
async def test_a_stale_draft_is_recomputed_and_loses_no_write(
    engage_db: Database,
    workspace: dict[str, Any],
    engage: httpx.AsyncClient,
    auth: dict[str, str],
    body: dict[str, Any],
) -> None:
    ws = workspace["workspace_id"]
    await _apply(engage_db, ws, track.prepare({"attributes": [{"external_id": "u", "n": 1}]}))
    draft = await _draft(engage_db, ws, body)
    assert isinstance(draft, Draft)
    # Another request writes the profile between the draft's reads and its transaction.
    other = {"attributes": [{"external_id": "u", "n": {"inc": 100}, "tag": "x"}]}
    await _apply(engage_db, ws, track.prepare(other))
    await _apply(engage_db, ws, draft)
    user = await one(engage, auth, "u")
    assert user["custom_attributes"] == {"n": 111, "tag": "x"}


async def test_a_draft_creating_a_profile_another_request_created_updates_it(
    engage_db: Database, workspace: dict[str, Any], engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    ws = workspace["workspace_id"]
    body = {
        "attributes": [{"external_id": "new", "plan": "pro"}],
        "events": [{"external_id": "new", "name": "open", "time": "2026-11-01T00:00:00Z"}],
    }
    draft = await _draft(engage_db, ws, body)
    await _apply(engage_db, ws, track.prepare({"attributes": [{"external_id": "new", "a": 1}]}))
    await _apply(engage_db, ws, draft)
    users = await export(engage, auth, external_ids=["new"])
    assert len(users) == 1
    assert users[0]["custom_attributes"] == {"a": 1, "plan": "pro"}
    assert [e["name"] for e in users[0]["custom_events"]] == ["open"]


class _Abort(Exception):
    pass


async def test_a_draft_rolled_back_and_run_again_gives_its_rows_the_new_ids(
    engage_db: Database, workspace: dict[str, Any], engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    ws = workspace["workspace_id"]
    body = {
        "attributes": [{"external_id": f"p{i}", "n": i} for i in range(3)],
        "events": [
            {"external_id": f"p{i}", "name": "open", "time": "2026-11-01T00:00:00Z"}
            for i in range(3)
        ],
    }
    draft = await _draft(engage_db, ws, body)

    def aborted(ex: Executor) -> None:
        track.apply(ex, ws, draft)
        raise _Abort  # as a transaction retried after a lost race is rolled back first

    with pytest.raises(_Abort):
        await engage_db.write(aborted)
    # Ids of the rolled-back profiles are handed out again: something else takes them now.
    await _apply(engage_db, ws, track.prepare({"attributes": [{"external_id": "other"}]}))
    await _apply(engage_db, ws, draft)
    users = {u["external_id"]: u for u in await export(engage, auth, external_ids=["p0", "p1", "p2", "other"])}  # fmt: skip
    assert sorted(users) == ["other", "p0", "p1", "p2"]
    for i in range(3):
        assert users[f"p{i}"]["custom_attributes"] == {"n": i}
        assert [e["count"] for e in users[f"p{i}"]["custom_events"]] == [1]
    assert "custom_events" not in users["other"] or users["other"]["custom_events"] == []


async def test_requests_with_push_tokens_are_not_drafted(
    engage_db: Database, workspace: dict[str, Any]
) -> None:
    body = {
        "attributes": [
            {"external_id": "d",
             "push_tokens": [{"app_id": workspace["app_id"], "token": "t", "device_id": "device-0001"}]}
        ]
    }  # fmt: skip
    assert not isinstance(await _draft(engage_db, workspace["workspace_id"], body), Draft)
