"""The official Amplitude Python SDK (``amplitude-analytics`` from PyPI), pointed at our server
over real HTTP: its events and identifies land, and it handles our 400, 413 and 429 bodies as it
does Amplitude's (drops, splits, gives up on a daily quota)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from amplitude import Amplitude, BaseEvent, Config, EventOptions, Identify
from sqlalchemy import func, select

from cohortbridge.analytics.app import create_app
from cohortbridge.analytics.identity import repository as identities
from cohortbridge.analytics.ingest.models import events
from cohortbridge.config import Settings
from cohortbridge.db.engine import Database
from tests.conftest import LiveServer


class Outcomes:
    """The SDK's callback: (event_type, user_id, code) of every event it finished with."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None, int]] = []
        self.lock = threading.Lock()

    def __call__(self, event: BaseEvent, code: int, _message: str | None = None) -> None:
        with self.lock:
            self.seen.append((event.event_type, event.user_id, code))

    def wait(self, count: int, timeout_s: float = 60) -> list[tuple[str, str | None, int]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.seen) >= count:
                    return list(self.seen)
            time.sleep(0.05)
        raise TimeoutError(f"the SDK finished {len(self.seen)} of {count} events")


def client(
    server: LiveServer, project: dict[str, Any], outcomes: Outcomes, **config: Any
) -> Amplitude:
    options: dict[str, Any] = {"flush_queue_size": 500, "flush_interval_millis": 200, **config}
    settings = Config(server_url=f"{server.url}/2/httpapi", callback=outcomes, **options)
    return Amplitude(project["api_key"], settings)


@pytest.fixture
def served(
    settings: Settings, analytics_db: Database, request: pytest.FixtureRequest
) -> Iterator[LiveServer]:
    overrides: dict[str, Any] = getattr(request, "param", {})
    tuned = settings.model_copy(update={"analytics_database_url": analytics_db.url, **overrides})
    with LiveServer(create_app(tuned)) as server:
        yield server


async def count_events(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(events))).scalar_one())


async def test_events_and_identifies_land(
    served: LiveServer, analytics_db: Database, project: dict[str, Any]
) -> None:
    outcomes = Outcomes()
    amp = client(served, project, outcomes)
    for i in range(5):
        amp.track(BaseEvent(event_type="Song Played", user_id="sdk-user-1",
                            event_properties={"n": i}))  # fmt: skip
    identify = Identify().set("plan", "pro").add("logins", 2).append("tags", "beta")
    amp.identify(identify, EventOptions(user_id="sdk-user-1"))
    amp.track(BaseEvent(event_type="Opened", device_id="sdk-device-99"))
    amp.flush()
    assert {code for *_rest, code in outcomes.wait(7)} == {200}
    amp.shutdown()
    assert await count_events(analytics_db) == 7
    async with analytics_db.read() as conn:
        found = await identities.find_user(conn, project["project_id"], user_id="sdk-user-1",
                                           device_id=None)  # fmt: skip
    assert found is not None
    assert found["user_properties"] == {"plan": "pro", "logins": 2, "tags": ["beta"]}
    assert found["device_properties"]["library"].startswith("amplitude-python/")


async def test_the_sdk_drops_the_events_our_400_names(
    served: LiveServer, analytics_db: Database, project: dict[str, Any]
) -> None:
    outcomes = Outcomes()
    amp = client(served, project, outcomes)
    amp.track(BaseEvent(event_type="ok", user_id="good-user"))
    amp.track(BaseEvent(event_type="short", user_id="abc"))  # under the 5-character minimum
    amp.track(BaseEvent(event_type="ok too", user_id="good-user"))
    amp.flush()
    seen = outcomes.wait(3)
    amp.shutdown()
    assert sorted((kind, code) for kind, _user, code in seen) == [
        ("ok", 200),
        ("ok too", 200),
        ("short", 400),
    ]
    assert await count_events(analytics_db) == 2


@pytest.mark.parametrize("served", [{"ingest_max_http_bytes": 8_000}], indirect=True)
async def test_the_sdk_splits_batches_on_our_413(
    served: LiveServer, analytics_db: Database, project: dict[str, Any]
) -> None:
    outcomes = Outcomes()
    # 40 events of ~450 bytes are over the 8 kB limit; the SDK halves its batches until they fit.
    amp = client(served, project, outcomes, flush_queue_size=40)
    for i in range(40):
        amp.track(BaseEvent(event_type="big", user_id=f"split-user-{i}",
                            event_properties={"blob": "x" * 400}))  # fmt: skip
    amp.flush()
    seen = outcomes.wait(40)
    amp.shutdown()
    assert {code for *_rest, code in seen} == {200}
    assert await count_events(analytics_db) == 40


@pytest.mark.parametrize("served", [{"ingest_daily_quota": 3}], indirect=True)
async def test_the_sdk_gives_up_on_a_daily_quota(
    served: LiveServer, analytics_db: Database, project: dict[str, Any]
) -> None:
    outcomes = Outcomes()
    amp = client(served, project, outcomes)
    for _ in range(5):
        amp.track(BaseEvent(event_type="spam", user_id="quota-user"))
    amp.flush()
    seen = outcomes.wait(5)
    amp.shutdown()
    assert {code for *_rest, code in seen} == {429}
    assert await count_events(analytics_db) == 0
