"""Benchmark: ``POST /batch`` over real HTTP (issue 5).

What it does, all on this machine (127.0.0.1 only), bounded in size and time:

1. Makes a fresh, migrated analytics database (SQLite in a temporary directory by default; with
   ``--db-url`` a throwaway database created on that loopback PostgreSQL server and dropped at
   the end) with one project (``projects.service.create_project`` gives the API key), and a
   second one of the same schema for the raw engine.
2. Starts the real server, ``python -m cohortbridge.cli serve analytics --workers 2`` (one
   process per core; on SQLite they take turns as the writer), as a subprocess on a free
   port. The throttle is left at its defaults (1,000 events/s per device or user over
   30 s, 500,000 a day): each request carries 500 users × a 4-event session, so a user sends
   at most a few events a minute and nothing is refused (a 429 would abort the run).
3. With ``--concurrency`` clients (``httpx.AsyncClient``, one keep-alive connection each, all in
   this process) sends requests of 2,000 SDK-shaped events (``user_id`` ``user-000123``, a
   device UUID per user, 20 event types, ``time`` in ms, a UUID ``insert_id``, a session id,
   3–4 event properties, platform/OS/device/app fields, ``library`` "amplitude-python/1.3.0";
   the first event of each user, and one in ten later, with user properties, plain or
   ``$set``/``$add`` operations):

   * phase ``first_sight``: every user for the first time, 500 new users per request (the
     server creates users and devices);
   * phase ``steady``: the rest of the events, 500 users drawn at random per request (all known:
     the server updates users and devices).

4. Checks that the rows arrived: stored events = events sent, no two with one insert_id, every
   event on its user, users = distinct user ids, devices and insert ids as sent; and that the
   server's database and the raw engine's hold the same rows (final user states and a sample of
   events compared column by column).
5. Measures, in the same run and after the server has stopped, the raw engine writing the same
   rows on the second database: stdlib ``sqlite3`` (or ``psycopg``), one connection, bare
   ``executemany``, one transaction per 2,000-event request, the server's PRAGMAs. Per
   request, mirroring ``analytics/ingest/service.py``: look up the amplitude ids of the
   request's user ids; reserve ids for new users (``MAX`` on SQLite, the sequence on
   PostgreSQL) and insert them; update every known user touched (properties, device
   properties, first/last seen, last active); upsert every device (owner, last seen); insert
   the events rows (with the user's properties stamped on each); upsert the insert-id rows.
   JSON encoding (orjson) and time formatting are timed; the rows' contents (properties
   after each operation, the latest device fields) are computed beforehand, untimed, by the
   same pure functions the server uses. Not in the raw engine, but in the server: the API key
   lookup, the insert-id de-duplication read, the device-owner read, reading and locking the
   users' stored state and the inactive event types.

On a PostgreSQL cluster with autovacuum off (this workplace's) the benchmark applies
autovacuum's ANALYZE rule itself to both databases while they are written (as
``bench/users_track.py`` does).

Prints one JSON object on stdout (progress on stderr): events/s overall and per phase,
``raw_events_per_s``, ``ratio_to_raw`` = ours / raw, latencies, CPU of server and clients, peak
server RSS, the machine, and which commit was measured.

Usage, from the repository root::

    .venv/bin/python -m bench.ingest [--users 100000] [--events 1000000] [--quick]
    .venv/bin/python -m bench.ingest --db-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python -m bench.ingest --py-spy /tmp/ingest.txt   # profile the server
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy.engine import make_url

from bench.common import (
    RssSampler,
    code_version,
    cpu_model,
    cpu_seconds,
    facts,
    free_port,
    log,
    percentile,
    start_py_spy,
    wait_up,
)
from cohortbridge.analytics.identity import properties
from cohortbridge.analytics.ingest.logic.events import COLUMNS, DEVICE_FIELDS
from cohortbridge.analytics.projects import service as projects
from cohortbridge.db import migrate
from cohortbridge.db.engine import SQLITE_PRAGMAS, Database

PER_REQUEST = 2_000
SESSION = 4  # events per user per request
USERS_PER_REQUEST = PER_REQUEST // SESSION
QUICK_USERS, QUICK_EVENTS = 2_000, 20_000
TARGET_EVENTS_PER_S = 50_000
LIBRARY = "amplitude-python/1.3.0"
EVENT_TYPES = (
    "session_start", "screen_viewed", "song_played", "song_paused", "song_skipped", "search",
    "search_result_clicked", "playlist_created", "playlist_followed", "artist_followed",
    "share", "like", "ad_impression", "ad_clicked", "purchase_started", "purchase_completed",
    "subscription_renewed", "settings_changed", "notification_opened", "session_end",
)  # fmt: skip
SCREENS = ("home", "search", "library", "player", "artist", "album", "settings")
SOURCES = ("organic", "push", "deeplink", "widget")
PLANS = ("free", "premium", "family", "student")
DEVICES = (
    {"platform": "iOS", "os_name": "ios", "os_version": "17.5.1", "device_brand": "Apple",
     "device_manufacturer": "Apple", "device_model": "iPhone15,2"},
    {"platform": "Android", "os_name": "android", "os_version": "14",
     "device_brand": "samsung", "device_manufacturer": "samsung", "device_model": "SM-S918B"},
    {"platform": "Web", "os_name": "Chrome", "os_version": "131", "device_model": "Mac OS"},
)  # fmt: skip
COUNTRIES = (("US", "en"), ("DE", "de"), ("FR", "fr"), ("BR", "pt"), ("JP", "ja"))
LOOPBACK = ("127.0.0.1", "localhost", "::1")
PHASES = ("first_sight", "steady")


# --- the requests -------------------------------------------------------------------------


def user_id(index: int) -> str:
    return f"user-{index:06d}"


def device_id(index: int) -> str:
    return str(uuid.UUID(int=(index * 0x9E3779B97F4A7C15F39CC0605CEDC835) % 2**128, version=4))


def device_fields(index: int) -> dict[str, Any]:
    """What the SDK sends about user ``index``'s device: the same on all of its events."""
    country, language = COUNTRIES[index % len(COUNTRIES)]
    return {**DEVICES[index % len(DEVICES)], "app_version": f"5.{index % 4}.0",
            "country": country, "language": language, "library": LIBRARY}  # fmt: skip


def user_update(index: int, rng: random.Random, first: bool) -> dict[str, Any] | None:
    """User properties whose end result does not depend on the order requests are applied in
    (values fixed per user; ``$add`` commutes), so the raw engine's rows can be compared."""
    if first:
        return {"plan": PLANS[index % len(PLANS)], "signup_year": 2019 + index % 7}
    roll = rng.random()
    if roll < 0.05:
        return {"$set": {"plan": PLANS[index % len(PLANS)], "push_enabled": index % 3 == 0},
                "$add": {"sessions": 1}}  # fmt: skip
    if roll < 0.1:
        return {"favourite_genre": ("pop", "rock", "jazz", "hip-hop")[index % 4]}
    return None


def session(index: int, rng: random.Random, start_ms: int, first: bool) -> list[dict[str, Any]]:
    """One user's 4 events of a session, a few seconds apart."""
    fields = device_fields(index)
    out = []
    for step in range(SESSION):
        event: dict[str, Any] = {
            "user_id": user_id(index), "device_id": device_id(index),
            "event_type": EVENT_TYPES[0] if step == 0 else rng.choice(EVENT_TYPES),
            "time": start_ms + step * rng.randrange(500, 20_000),
            "insert_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "session_id": start_ms,
            "event_properties": {"screen": rng.choice(SCREENS), "position": rng.randrange(50),
                                 "source": rng.choice(SOURCES)},
            **fields,
        }  # fmt: skip
        if rng.random() < 0.3:
            event["event_properties"]["duration_ms"] = rng.randrange(1_000, 300_000)
        update = user_update(index, rng, first and step == 0)
        if update is not None:
            event["user_properties"] = update
        out.append(event)
    return out


@dataclass(frozen=True)
class Plan:
    users: int
    events: int

    @property
    def requests(self) -> dict[str, int]:
        first = -(-self.users // USERS_PER_REQUEST)
        steady = max(0, self.events - self.users * SESSION) // PER_REQUEST
        return {"first_sight": first, "steady": steady}


def bodies(plan: Plan, api_key: str, start_ms: int) -> dict[str, list[bytes]]:
    """Request bodies per phase: every user once in order, then random known users."""
    rng = random.Random(5)
    out: dict[str, list[bytes]] = {"first_sight": [], "steady": []}
    for start in range(0, plan.users, USERS_PER_REQUEST):
        first = range(start, min(start + USERS_PER_REQUEST, plan.users))
        out["first_sight"].append(_body(api_key, first, rng, start_ms, first=True))
    for _ in range(plan.requests["steady"]):
        known = rng.sample(range(plan.users), min(USERS_PER_REQUEST, plan.users))
        out["steady"].append(_body(api_key, known, rng, start_ms, first=False))
    return out


def _body(
    api_key: str, users: Iterable[int], rng: random.Random, start_ms: int, *, first: bool
) -> bytes:  # fmt: skip
    events = []
    for index in users:
        # Sessions within the last day; the server takes the client's time as it is.
        events.extend(session(index, rng, start_ms - rng.randrange(86_400_000), first))
    return orjson.dumps({"api_key": api_key, "events": events})


# --- sending ------------------------------------------------------------------------------


@dataclass
class PhaseResult:
    seconds: float
    latencies: list[float]
    client_cpu_s: float
    server_cpu_s: float


def start_analytics(
    url: str, work: Path, workers: int, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    """``cohortbridge serve analytics`` on a free loopback port: (process, base URL)."""
    port = free_port()
    environment = {**os.environ, "COHORTBRIDGE_ANALYTICS_DATABASE_URL": url,
                   "COHORTBRIDGE_DATA_DIR": str(work / "var"),
                   "COHORTBRIDGE_LOG_LEVEL": "warning", **env}  # fmt: skip
    command = [sys.executable, "-m", "cohortbridge.cli", "serve", "analytics", "--port",
               str(port), "--workers", str(workers)]  # fmt: skip
    return subprocess.Popen(command, env=environment), f"http://127.0.0.1:{port}"


async def send(
    base: str, payloads: list[bytes], concurrency: int, server: psutil.Process
) -> PhaseResult:
    """Every payload once, ``concurrency`` requests in flight; any answer but 200 aborts."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for payload in payloads:
        queue.put_nowait(payload)
    latencies: list[float] = []

    async def client(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            payload = queue.get_nowait()
            sent = time.perf_counter()
            response = await http.post(
                "/batch", content=payload, headers={"Content-Type": "application/json"}
            )
            latencies.append(time.perf_counter() - sent)
            if response.status_code != 200 or response.json()["events_ingested"] != PER_REQUEST:
                raise RuntimeError(f"{response.status_code} {response.text[:300]}")

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [httpx.AsyncClient(base_url=base, timeout=300, limits=limits) for _ in range(concurrency)]  # fmt: skip
    try:
        await asyncio.gather(*(http.get("/healthz") for http in clients))  # connect them first
        cpu, server_cpu = time.process_time(), cpu_seconds(server)
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for http in clients))
        seconds = time.perf_counter() - started
        return PhaseResult(
            seconds, latencies, time.process_time() - cpu, cpu_seconds(server) - server_cpu
        )
    finally:
        for http in clients:
            await http.aclose()


# --- the databases -----------------------------------------------------------------------


@dataclass
class Store:
    """Two fresh migrated analytics databases of one engine: the server's and the raw one's."""

    dialect: str
    server_url: str  # SQLAlchemy async URL, as the server takes it
    raw_url: str
    work: Path
    autovacuum: bool = True

    def connect(self, url: str) -> Any:
        parsed = make_url(url)
        if self.dialect == "sqlite":
            conn = sqlite3.connect(str(parsed.database), isolation_level=None)
            for pragma in SQLITE_PRAGMAS:
                conn.execute(pragma)
            return conn
        return psycopg.connect(libpq(url), autocommit=True)

    def version(self) -> str:
        if self.dialect == "sqlite":
            return f"SQLite {sqlite3.sqlite_version}"
        with self.connect(self.raw_url) as conn:
            return "PostgreSQL " + str(conn.execute("SHOW server_version").fetchone()[0])


def libpq(url: str) -> str:
    """A SQLAlchemy URL as the libpq URI psycopg takes."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.contextmanager
def stores(db_url: str | None) -> Iterator[Store]:
    work = Path(tempfile.mkdtemp(prefix="cb-bench-"))
    try:
        if db_url is None:
            urls = [f"sqlite+aiosqlite:///{work / name}" for name in ("analytics.db", "raw.db")]
            for url in urls:
                migrate.upgrade("analytics", url)
            yield Store("sqlite", urls[0], urls[1], work)
            return
        with postgres(db_url, work) as store:
            yield store
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def postgres(db_url: str, work: Path) -> Iterator[Store]:
    """Two throwaway databases ``cb_bench_<random>_{server,raw}`` on a loopback server."""
    base = make_url(db_url)
    if base.get_backend_name() != "postgresql" or (base.host or "127.0.0.1") not in LOOPBACK:
        raise SystemExit("--db-url must be postgresql+psycopg://…@127.0.0.1[:port]/…")
    admin = libpq(db_url)
    names = [f"cb_bench_{uuid.uuid4().hex[:10]}_{role}" for role in ("server", "raw")]
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
        autovacuum = conn.execute("SHOW autovacuum").fetchone() == ("on",)
    try:
        urls = [
            base.set(drivername="postgresql+psycopg", database=name).render_as_string(False)
            for name in names
        ]
        for url in urls:
            migrate.upgrade("analytics", url)
        yield Store("postgresql", urls[0], urls[1], work, autovacuum)
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def new_project(url: str) -> projects.CreatedProject:
    db = Database.connect(url)
    try:
        async with db.transaction() as conn:
            return await projects.create_project(conn, "Bench")
    finally:
        await db.dispose()


class Analyzer(threading.Thread):
    """Autovacuum's ANALYZE rule (50 rows + 10 % changed), each second, where the cluster runs
    without autovacuum: without statistics PostgreSQL plans the lookups as sequential scans
    and the run measures that artefact (see ``bench/users_track.py``)."""

    RULE = (
        "SELECT relname FROM pg_stat_user_tables "
        "WHERE n_mod_since_analyze > 50 + 0.1 * greatest(n_live_tup - n_mod_since_analyze, 0)"
    )

    def __init__(self, store: Store, url: str) -> None:
        super().__init__(daemon=True)
        self.store, self.url = store, url
        self.stop = threading.Event()
        self.runs = 0

    def run(self) -> None:
        with self.store.connect(self.url) as conn:
            while not self.stop.wait(1.0):
                for (table,) in conn.execute(self.RULE).fetchall():
                    conn.execute(f'ANALYZE "{table}"')
                    self.runs += 1


@contextlib.contextmanager
def analyzing(store: Store, url: str, counts: dict[str, int], role: str) -> Iterator[None]:
    if store.dialect != "postgresql" or store.autovacuum:
        yield
        return
    analyzer = Analyzer(store, url)
    analyzer.start()
    try:
        yield
    finally:
        analyzer.stop.set()
        analyzer.join(timeout=60)
        counts[role] = analyzer.runs


# --- what the server stores, computed as it does (untimed) ---------------------------------


@dataclass
class UserState:
    user_properties: dict[str, Any] = field(default_factory=dict)
    device_properties: dict[str, Any] = field(default_factory=dict)
    first_seen_at: dt.datetime | None = None
    last_seen_at: dt.datetime | None = None


@dataclass
class RawRequest:
    """One request's rows, ids by user_id (the raw engine looks the amplitude ids up)."""

    events: list[tuple[Any, ...]]
    new_users: list[tuple[str, UserState]]
    old_users: list[tuple[str, UserState]]
    devices: list[tuple[str, str, dt.datetime]]  # device, its user, latest event time
    inserts: list[tuple[str, str]]  # (device_id, insert_id)


class Mirror:
    """Users' states as ``service.ingest`` evolves them: user properties after each event's
    operations, the latest device fields, first and last seen (every event type is active)."""

    def __init__(self) -> None:
        self.users: dict[str, UserState] = {}

    def request(self, body: dict[str, Any]) -> RawRequest:
        new: dict[str, UserState] = {}
        touched: dict[str, UserState] = {}
        latest: dict[str, tuple[str, dt.datetime]] = {}
        rows = []
        for raw in body["events"]:
            uid, moment = raw["user_id"], dt.datetime.fromtimestamp(raw["time"] / 1000, dt.UTC)
            user = self._user(uid, new, touched)
            stamped = self._apply(user, raw, moment)
            data = {k: v for k, v in raw.items() if k not in COLUMNS and v is not None}
            rows.append((uid, raw["event_type"], moment, raw["device_id"], raw["session_id"],
                         raw["insert_id"], raw["event_properties"], stamped, data))  # fmt: skip
            seen = latest.get(raw["device_id"])
            latest[raw["device_id"]] = (uid, max(seen[1], moment) if seen else moment)
        return RawRequest(
            rows,
            sorted((u, s) for u, s in touched.items() if u in new),
            sorted((u, s) for u, s in touched.items() if u not in new),
            [(device, uid, at) for device, (uid, at) in latest.items()],
            sorted({(r[3], r[5]) for r in rows}),
        )

    def _user(
        self, uid: str, new: dict[str, UserState], touched: dict[str, UserState]
    ) -> UserState:
        user = self.users.get(uid)
        if user is None:
            user = self.users[uid] = new[uid] = UserState()
        touched[uid] = user
        return user

    @staticmethod
    def _apply(user: UserState, raw: dict[str, Any], moment: dt.datetime) -> dict[str, Any]:
        if raw.get("user_properties"):
            user.user_properties = properties.apply(user.user_properties, raw["user_properties"])
        device = {k: raw[k] for k in DEVICE_FIELDS if k in raw}
        user.device_properties = {**user.device_properties, **device}
        user.first_seen_at = min(user.first_seen_at or moment, moment)
        user.last_seen_at = max(user.last_seen_at or moment, moment)
        return user.user_properties


# --- the raw engine ------------------------------------------------------------------------


class RawEngine:
    """The server's row writes for one request, by bare ``executemany`` on one connection."""

    def __init__(self, store: Store, project_id: int) -> None:
        self.sqlite = store.dialect == "sqlite"
        self.conn = store.connect(store.raw_url)
        self.cur = self.conn.cursor()
        self.project = project_id
        self.sql = {k: v if self.sqlite else v.replace("?", "%s") for k, v in RAW_SQL.items()}
        if not self.sqlite:
            self.sql["upsert_device"] = self.sql["upsert_device"].replace("max(", "GREATEST(")

    def close(self) -> None:
        self.conn.close()

    def json(self, value: Any) -> Any:
        text = orjson.dumps(value).decode()
        return text if self.sqlite else Jsonb(value, dumps=lambda _v: text)

    def time(self, value: dt.datetime | None) -> Any:
        if value is None or not self.sqlite:
            return value
        # SQLAlchemy's SQLite DATETIME storage: naive UTC text.
        return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")

    def write(self, request: RawRequest) -> None:
        if self.sqlite:
            self.cur.execute("BEGIN IMMEDIATE")
            self._write(request)
            self.cur.execute("COMMIT")
        else:
            with self.conn.transaction():
                self._write(request)

    def _ids(self, user_ids: list[str]) -> dict[str, int]:
        if self.sqlite:
            marks = ",".join("?" * len(user_ids))
            sql = f"SELECT user_id, amplitude_id FROM users WHERE project_id = ? AND user_id IN ({marks})"
            return dict(self.cur.execute(sql, (self.project, *user_ids)).fetchall())
        sql = "SELECT user_id, amplitude_id FROM users WHERE project_id = %s AND user_id = ANY(%s)"
        return dict(self.cur.execute(sql, (self.project, user_ids)).fetchall())

    def _reserve(self, count: int) -> list[int]:
        if self.sqlite:
            start = self.cur.execute("SELECT COALESCE(MAX(amplitude_id), 0) FROM users").fetchone()
            return list(range(start[0] + 1, start[0] + 1 + count))
        sql = ("SELECT nextval(pg_get_serial_sequence('users', 'amplitude_id')) "
               "FROM generate_series(1, %s)")  # fmt: skip
        return [row[0] for row in self.cur.execute(sql, (count,)).fetchall()]

    def _write(self, request: RawRequest) -> None:
        now = dt.datetime.now(dt.UTC)
        at, p = self.time(now), self.project
        ids = self._ids([uid for uid, _ in request.old_users]) if request.old_users else {}
        if request.new_users:
            ids.update(zip([u for u, _ in request.new_users], self._reserve(len(request.new_users)), strict=True))  # fmt: skip
            self.cur.executemany(self.sql["insert_user"], [
                (ids[uid], p, uid, *self._state(s), at, at) for uid, s in request.new_users
            ])  # fmt: skip
        if request.old_users:
            self.cur.executemany(self.sql["update_user"], [
                (uid, *self._state(s), at, ids[uid]) for uid, s in request.old_users
            ])  # fmt: skip
        self.cur.executemany(self.sql["upsert_device"], [
            (p, device, ids[uid], self.time(seen))
            for device, uid, seen in sorted(request.devices)
        ])  # fmt: skip
        self.cur.executemany(self.sql["insert_event"], [
            (p, ids[uid], kind, self.time(moment), uid, device, sid, iid, self.json(props),
             self.json(stamped), self.json(data), at)
            for uid, kind, moment, device, sid, iid, props, stamped, data in request.events
        ])  # fmt: skip
        self.cur.executemany(self.sql["upsert_insert"], [
            (p, device, iid, at) for device, iid in request.inserts
        ])  # fmt: skip

    def _state(self, user: UserState) -> tuple[Any, ...]:
        # last_active_at = last_seen_at: no event type is marked inactive.
        return (self.json(user.user_properties), self.json(user.device_properties),
                self.time(user.first_seen_at), self.time(user.last_seen_at),
                self.time(user.last_seen_at))  # fmt: skip


RAW_SQL = {
    "insert_user": (
        "INSERT INTO users (amplitude_id, project_id, user_id, user_properties, "
        "device_properties, first_seen_at, last_seen_at, last_active_at, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ),
    "update_user": (
        "UPDATE users SET user_id = ?, user_properties = ?, device_properties = ?, "
        "first_seen_at = ?, last_seen_at = ?, last_active_at = ?, updated_at = ? "
        "WHERE amplitude_id = ?"
    ),
    "upsert_device": (
        "INSERT INTO devices (project_id, device_id, amplitude_id, last_seen_at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (project_id, device_id) DO UPDATE SET "
        "amplitude_id = excluded.amplitude_id, "
        "last_seen_at = max(devices.last_seen_at, excluded.last_seen_at)"
    ),
    "insert_event": (
        "INSERT INTO events (project_id, amplitude_id, event_type, time, user_id, device_id, "
        "session_id, insert_id, event_properties, user_properties, data, server_received_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ),
    "upsert_insert": (
        "INSERT INTO event_inserts (project_id, device_id, insert_id, seen_at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (project_id, device_id, insert_id) DO UPDATE SET "
        "seen_at = excluded.seen_at"
    ),
}


def raw_engine(store: Store, project_id: int, payloads: dict[str, list[bytes]]) -> dict[str, float]:
    """Seconds per phase for the raw engine writing the same requests' rows."""
    engine = RawEngine(store, project_id)
    mirror = Mirror()
    timings = {}
    try:
        for phase, phase_payloads in payloads.items():
            timings[phase] = 0.0
            for payload in phase_payloads:
                request = mirror.request(orjson.loads(payload))  # untimed
                started = time.perf_counter()
                engine.write(request)
                timings[phase] += time.perf_counter() - started
    finally:
        engine.close()
    return timings


# --- checks --------------------------------------------------------------------------------

COUNTS = {
    "events": "SELECT count(*) FROM events WHERE project_id = ?",
    "distinct_insert_ids": "SELECT count(DISTINCT insert_id) FROM events WHERE project_id = ?",
    "events_on_their_user": (
        "SELECT count(*) FROM events e JOIN users u ON u.amplitude_id = e.amplitude_id "
        "AND u.user_id = e.user_id WHERE e.project_id = ?"
    ),
    "users": "SELECT count(*) FROM users WHERE project_id = ?",
    "distinct_user_ids": "SELECT count(DISTINCT user_id) FROM users WHERE project_id = ?",
    "devices": "SELECT count(*) FROM devices WHERE project_id = ?",
    "insert_id_rows": "SELECT count(*) FROM event_inserts WHERE project_id = ?",
}
USER_STATE = (
    "SELECT user_id, user_properties, device_properties, first_seen_at, last_seen_at, "
    "last_active_at FROM users WHERE project_id = ? ORDER BY user_id"
)
EVENT_ROW = (
    "SELECT insert_id, event_type, time, user_id, device_id, session_id, event_properties, "
    "data, user_properties FROM events WHERE project_id = ? AND insert_id IN ({marks})"
)


def verify(store: Store, url: str, project_id: int, events: int, users: int) -> dict[str, int]:
    """The stored counts; raises unless they are what was sent."""
    expected = {"events": events, "distinct_insert_ids": events, "events_on_their_user": events,
                "users": users, "distinct_user_ids": users, "devices": users,
                "insert_id_rows": events}  # fmt: skip
    found = {}
    with contextlib.closing(store.connect(url)) as conn:
        for name, text in COUNTS.items():
            sql = text if store.dialect == "sqlite" else text.replace("?", "%s")
            found[name] = int(conn.execute(sql, (project_id,)).fetchone()[0])
    if found != expected:
        raise RuntimeError(f"{url}: stored {found}, expected {expected}")
    return found


def _plain(value: Any) -> Any:
    """A column value comparable across the two databases (JSON text read as JSON)."""
    return orjson.loads(value) if isinstance(value, str) and value[:1] in "{[" else value


def _rows(store: Store, url: str, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    if store.dialect != "sqlite":
        sql = sql.replace("?", "%s")
    with contextlib.closing(store.connect(url)) as conn:
        return [tuple(_plain(v) for v in row) for row in conn.execute(sql, params).fetchall()]


def _events(store: Store, url: str, project_id: int, insert_ids: list[str]) -> dict[str, Any]:
    marks = ", ".join("?" * len(insert_ids))
    rows = _rows(store, url, EVENT_ROW.format(marks=marks), (project_id, *insert_ids))
    return {row[0]: row for row in rows}


def same_rows(
    store: Store, projects_: tuple[int, int], payloads: dict[str, list[bytes]]
) -> dict[str, int]:
    """Raises unless the server's and the raw engine's databases hold the same rows: every
    user's final state; all columns of one first-sight request's events (users seen once, so
    even the stamped user properties are independent of the order requests were served); the
    events of one steady request but their stamped properties (they depend on that order)."""
    urls = (store.server_url, store.raw_url)
    server, raw = (
        _rows(store, url, USER_STATE, (p,)) for url, p in zip(urls, projects_, strict=True)
    )
    if server != raw:
        raise RuntimeError("the raw engine's users differ from the server's")
    compared = {"users": len(server)}
    for phase, width in (("first_sight", 9), ("steady", 8)):
        body = orjson.loads(payloads[phase][-1]) if payloads[phase] else {"events": []}
        ids = [e["insert_id"] for e in body["events"]]
        ours, theirs = (_events(store, url, p, ids) for url, p in zip(urls, projects_, strict=True))
        if len(ours) != len(ids) or any(ours[i][:width] != theirs[i][:width] for i in ids):
            raise RuntimeError(f"the raw engine's {phase} events differ from the server's")
        compared[f"{phase}_events"] = len(ids)
    return compared


# --- the run ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _async(manager: contextlib.AbstractContextManager[None]) -> AsyncIterator[None]:
    with manager:
        yield


@dataclass
class Served:
    phases: dict[str, PhaseResult]
    rss_peak: int


async def serve_and_send(
    args: argparse.Namespace, store: Store, payloads: dict[str, list[bytes]],
    analyzed: dict[str, int],
) -> Served:  # fmt: skip
    server, base = start_analytics(store.server_url, store.work, args.workers, {})
    phases: dict[str, PhaseResult] = {}
    spy = None
    try:
        async with asyncio.timeout(args.timeout), _async(analyzing(store, store.server_url, analyzed, "server")):  # fmt: skip
            await wait_up(base)
            sampler = RssSampler(server.pid)
            sampler.start()
            if args.py_spy:
                spy = start_py_spy(server.pid, args.py_spy)
                await asyncio.sleep(1)
            for phase, phase_payloads in payloads.items():
                count = len(phase_payloads) * PER_REQUEST
                log(f"{phase}: {len(phase_payloads):,} requests, {count:,} events …")
                phases[phase] = await send(
                    base, phase_payloads, args.concurrency, psutil.Process(server.pid)
                )
                log(f"  {count / phases[phase].seconds:,.0f} events/s")
            sampler.stop.set()
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=120)
        server.terminate()
        server.wait(timeout=60)
    return Served(phases, sampler.peak)


def phase_report(events: int, ours: PhaseResult, raw_s: float) -> dict[str, Any]:
    return {
        "events": events,
        "requests": events // PER_REQUEST,
        "seconds": round(ours.seconds, 2),
        "events_per_s": round(events / ours.seconds),
        "raw_events_per_s": round(events / raw_s),
        "ratio_to_raw": round(raw_s / ours.seconds, 3),
        "latency_ms_p50": round(1000 * percentile(ours.latencies, 0.5), 1),
        "latency_ms_p99": round(1000 * percentile(ours.latencies, 0.99), 1),
        "server_cpu_s": round(ours.server_cpu_s, 1),
        "client_cpu_s": round(ours.client_cpu_s, 1),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    plan = Plan(QUICK_USERS, QUICK_EVENTS) if args.quick else Plan(args.users, args.events)
    analyzed: dict[str, int] = {}
    code = code_version()  # at the start: the server imports the code as it is now
    with stores(args.db_url) as store:
        project, raw_project = await new_project(store.server_url), await new_project(store.raw_url)
        log(f"{plan.users:,} users, building {sum(plan.requests.values()):,} requests …")
        payloads = bodies(plan, project.api_key, int(time.time() * 1000))
        sent = {phase: len(p) * PER_REQUEST for phase, p in payloads.items()}
        request_bytes = sum(len(b) for p in payloads.values() for b in p) / sum(map(len, payloads.values()))  # fmt: skip
        served = await serve_and_send(args, store, payloads, analyzed)
        stored = verify(store, store.server_url, project.project_id, sum(sent.values()), plan.users)
        log("raw engine, same rows …")
        with analyzing(store, store.raw_url, analyzed, "raw"):
            raw = raw_engine(store, raw_project.project_id, payloads)
        verify(store, store.raw_url, raw_project.project_id, sum(sent.values()), plan.users)
        compared = same_rows(store, (project.project_id, raw_project.project_id), payloads)
        database = store.version()
        if store.dialect == "postgresql" and not store.autovacuum:
            database += (
                ", autovacuum off: its ANALYZE rule applied by the benchmark "
                f"({analyzed.get('server', 0)} runs for the server, {analyzed.get('raw', 0)} for raw)"
            )
    extra = {"request_mb_avg": round(request_bytes / 2**20, 2), "database": database, "code": code}
    return report(args, plan, sent, served, raw, stored, compared, extra, store.dialect)


def report(
    args: argparse.Namespace, plan: Plan, sent: dict[str, int], served: Served,
    raw: dict[str, float], stored: dict[str, int], compared: dict[str, int],
    extra: dict[str, Any], dialect: str,
) -> dict[str, Any]:  # fmt: skip
    phases = served.phases
    total, seconds, raw_seconds = sum(sent.values()), sum(p.seconds for p in phases.values()), sum(raw.values())  # fmt: skip
    latencies = [x for p in phases.values() for x in p.latencies]
    ours = total / seconds
    return {
        "benchmark": "ingest",
        "users": plan.users,
        "requests": total // PER_REQUEST,
        "events_per_request": PER_REQUEST,
        "events": total,
        "seconds": round(seconds, 2),
        "events_per_s": round(ours),
        "raw_events_per_s": round(total / raw_seconds),
        "ratio_to_raw": round(raw_seconds / seconds, 3),
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "target_met": ours >= TARGET_EVENTS_PER_S,
        "phases": {p: phase_report(sent[p], phases[p], raw[p]) for p in phases if sent[p]},
        "raw_seconds": round(raw_seconds, 2),
        "raw_engine": ("stdlib sqlite3, the server's PRAGMAs" if dialect == "sqlite" else "psycopg")
        + ", one connection, bare executemany, one transaction per 2,000-event request: "
        "user-id lookup, id reservation, users inserted/updated, devices upserted, events "
        "inserted, insert ids upserted (JSON encoding timed; row contents computed untimed)",
        "latency_ms_p50": round(1000 * percentile(latencies, 0.5), 1),
        "latency_ms_p99": round(1000 * percentile(latencies, 0.99), 1),
        # Cores' worth of CPU while the requests ran: server processes, and this (client) one.
        "server_cpu_cores": round(sum(p.server_cpu_s for p in phases.values()) / seconds, 2),
        "client_cpu_cores": round(sum(p.client_cpu_s for p in phases.values()) / seconds, 2),
        "server_rss_peak_mb": round(served.rss_peak / 2**20, 1),
        "stored": stored,
        "same_rows_as_raw": compared,
        "throttle": "server defaults (1,000 events/s per device or user over 30 s, 500,000/day)",
        "concurrency": args.concurrency,
        "clients": f"{args.concurrency} httpx.AsyncClient connections in one process",
        "workers": args.workers,
        **extra,
        "profiled": bool(args.py_spy),
        **facts(),
        "cpu": cpu_model(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((__doc__ or "").splitlines()[1:]),
    )
    parser.add_argument("--users", type=int, default=100_000, help="distinct users (100000)")
    parser.add_argument(
        "--events", type=int, default=1_000_000,
        help="events in all (1000000): 4 per user to create them, the rest in steady state",
    )  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent clients (4)")
    parser.add_argument(
        "--db-url",
        help="a loopback PostgreSQL server, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/"
        "postgres: two throwaway databases are created there and dropped (default: SQLite)",
    )
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (2)")
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_USERS:,} users, {QUICK_EVENTS:,} events"
    )
    parser.add_argument("--timeout", type=float, default=1800, help="bound of the HTTP part, s")
    parser.add_argument(
        "--py-spy",
        metavar="FILE",
        help="record the server with py-spy (per thread, idle included) to FILE: collapsed "
        "stacks, or a flame graph for .svg, speedscope for .json; slows the server down",
    )
    args = parser.parse_args()
    if args.users < 1 or args.users % USERS_PER_REQUEST or args.concurrency < 1:
        parser.error(f"--users must be a multiple of {USERS_PER_REQUEST}, --concurrency positive")
    if args.events < SESSION * args.users:
        parser.error("--events must be at least 4 × --users (the first-sight phase)")
    # Stopped by a timeout: unwind as on Ctrl-C, so the server stops and databases are dropped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    result = asyncio.run(run(args))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
