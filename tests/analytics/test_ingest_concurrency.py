"""Parallel uploads for the same new users and devices: every event lands on one user each."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import func, select

from cohortbridge.analytics.identity.models import users
from cohortbridge.analytics.ingest.models import events
from cohortbridge.db.engine import Database
from tests.analytics.test_ingest_wire import upload


async def test_four_clients_creating_the_same_users(
    analytics: httpx.AsyncClient, analytics_db: Database, project: dict[str, Any]
) -> None:
    batch = [
        {"user_id": f"race-user-{i}", "device_id": f"race-device-{i}", "event_type": "e",
         "user_properties": {"$add": {"n": 1}}}
        for i in range(20)
    ]  # fmt: skip
    responses = await asyncio.gather(*(upload(analytics, project, batch, "/batch")
                                       for _ in range(4)))  # fmt: skip
    assert [r.status_code for r in responses] == [200] * 4, [r.text for r in responses]
    async with analytics_db.read() as conn:
        stored = (await conn.execute(select(func.count()).select_from(events))).scalar_one()
        people = (await conn.execute(select(users.c.user_id, users.c.user_properties))).all()
        spread = (await conn.execute(
            select(func.count(func.distinct(events.c.amplitude_id)))
        )).scalar_one()  # fmt: skip
    assert stored == 80
    assert len(people) == 20
    assert spread == 20
    # No increment lost: every user saw its four $add operations.
    assert all(props["n"] == 4 for _user, props in people)
