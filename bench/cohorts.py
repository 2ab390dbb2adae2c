"""Benchmark: behavioral cohort computation on 10,000,000 events (issue 6).

What it does, all on this machine (127.0.0.1 only):

1. Makes a fresh, migrated analytics database (SQLite in a temporary directory by default;
   with ``--db-url`` a throwaway ``cb_bench_<random>`` database on that loopback PostgreSQL
   server, dropped at the end) with one project (``projects.service.create_project``).
2. Seeds it directly with the raw engine (stdlib ``sqlite3`` ``executemany`` or psycopg
   ``COPY``; not measured), rows shaped as ingestion writes them (``ingest.service._write``):
   N users (``user-<i>``, user properties ``plan`` pro 25 % / free and ``country``, device
   properties, first/last seen and last active times), one device each (``dev-<i>``), and 10 N
   events over the last 59 days across 20 event types (``Song Played`` 35 %, ``Purchase``
   5 % with a ``price``, …) with their event properties, the user's properties stamped on
   each and the client's other fields in ``data``. The events table's indexes are dropped
   for the load and re-created with their own DDL afterwards (same schema, faster load). On
   PostgreSQL it then runs ``VACUUM (ANALYZE)`` (autovacuum is off in this workplace).
3. Starts ``python -m cohortbridge.cli serve analytics`` (periodic jobs off, so nothing computes
   behind the benchmark's back), creates three cohorts with ``POST /api/3/cohorts/behavioral``
   and times their first full computation with ``POST /api/3/cohorts/{id}/compute``:

   * ``played_3x_30d``: performed "Song Played" ≥ 3 times in the last 30 days;
   * ``purchase_sum_pro``: "Purchase" with sum of ``price`` > 50 in the last 30 days AND user
     property ``gp:plan`` is "pro";
   * ``active_7d_no_purchase``: active in the last 7 days AND NOT performed "Purchase" in the
     last 60 days.

   Each size is checked against the count computed in Python while the data was generated.
   The same three definitions are then created again and computed in this process with
   ``cohorts.service.compute`` while every SQL statement is timed (where the time goes).
4. The tick: 10,000 new events of random users go through ``POST /batch`` (2,000 per request,
   i.e. through ingestion), then every cohort is recomputed (over HTTP and in process): the
   time, size, entered and left of each, checked against the generated data.

Targets (issue 6) with SQLite: full computation ≤ 10 s per cohort, tick ≤ 2 s per cohort.
Prints one JSON object on stdout, progress on stderr. Usage, from the repository root::

    .venv/bin/python -m bench.cohorts [--users 1000000] [--quick]
    .venv/bin/python -m bench.cohorts --db-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from array import array
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from sqlalchemy import Select, event, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from bench.common import facts, free_port, log, wait_up
from cohortbridge.analytics.cohorts import service as cohorts
from cohortbridge.analytics.cohorts.logic import definition as vocabulary
from cohortbridge.analytics.cohorts.repository import audience
from cohortbridge.analytics.identity.models import users as users_table
from cohortbridge.analytics.ingest.models import events as events_table
from cohortbridge.analytics.projects import service as projects
from cohortbridge.db import migrate
from cohortbridge.db.engine import Database

QUICK_USERS = 20_000
CHUNK = 50_000  # users generated and written per transaction
DAY_S = 86_400
HISTORY_S = 59 * DAY_S  # events fall in the last 59 days: all inside "the last 60 days"
# Event offsets (seconds before "now") this close to a window's edge are moved away from it,
# so that the minutes between seeding and computing never move an event across an edge.
EDGES_S = (7 * DAY_S, 30 * DAY_S)
EDGE_GAP_S = 2 * 3600
MAX_EVENTS = 20  # per user: uniform in 0..20, 10 on average
TICK_EVENTS = 10_000
TICK_BATCH = 2_000
TARGETS_SQLITE = {"full_s": 10.0, "tick_s": 2.0}
LOOPBACK = ("127.0.0.1", "localhost", "::1")

EVENT_TYPES = ("Song Played", "Page Viewed", "Search", "Add to Playlist", "Song Skipped",
               "Purchase", "Login", "Logout", "Share", "Like", "Follow Artist", "Open App",
               "Close App", "Settings Changed", "Download", "Ad Viewed", "Ad Clicked",
               "Playlist Created", "Comment", "Rate Song")  # fmt: skip
EVENT_WEIGHTS = (35, 10, 8, 6, 6, 5, 4, 3, 3, 3, 2, 3, 2, 1, 2, 2, 1, 1, 2, 1)
EVENT_CUM = tuple(itertools.accumulate(EVENT_WEIGHTS))
SONG, PURCHASE = 0, 5
GENRES = ("rock", "pop", "jazz", "hiphop", "classical", "electronic", "folk", "metal")
SOURCES = ("home", "search", "playlist", "radio", "notification")
COUNTRIES = ("US", "DE", "FR", "GB", "BR", "JP")
PLATFORMS = ("iOS", "Android", "Web")
PRICE_STEPS = 400  # a price is k × 0.25 (exact in binary floating point), k in 1..400
PRO_SHARE = 0.25

DEFINITIONS: dict[str, Any] = {
    "played_3x_30d": {"andClauses": [{"orClauses": [
        {"type": "event", "type_value": "Song Played", "operator": ">=", "operator_value": 3,
         "time_type": "rolling", "time_value": 30}]}]},
    "purchase_sum_pro": {"andClauses": [
        {"orClauses": [{"type": "event", "type_value": "Purchase", "operator": ">",
                        "operator_value": 50, "metric": {"type": "sum", "prop": "price"},
                        "time_type": "rolling", "time_value": 30}]},
        {"orClauses": [{"type": "user_property", "prop": "gp:plan", "op": "is",
                        "values": ["pro"]}]}]},
    "active_7d_no_purchase": {"andClauses": [
        {"orClauses": [{"type": "active", "time_type": "rolling", "time_value": 7}]},
        {"negated": True, "orClauses": [{"type": "event", "type_value": "Purchase",
                                         "time_type": "rolling", "time_value": 60}]}]},
}  # fmt: skip


# --- databases ---------------------------------------------------------------------------------


@dataclass
class Store:
    """One migrated database: its async URL (what the server takes) and raw access."""

    side: str
    dialect: str
    url: str
    conninfo: str = ""  # PostgreSQL
    autovacuum: bool = True

    @property
    def path(self) -> Path:
        return Path(str(make_url(self.url).database))

    def raw(self) -> Any:
        """A raw DB-API connection for seeding (no sync, no foreign keys)."""
        if self.dialect == "sqlite":
            lite = sqlite3.connect(self.path)
            for pragma in ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=OFF",
                           "PRAGMA cache_size=-1000000", "PRAGMA temp_store=MEMORY"):  # fmt: skip
                lite.execute(pragma)
            return lite
        pg = psycopg.connect(self.conninfo)
        pg.execute("SET session_replication_role = replica")
        return pg

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        conn = self.raw()
        try:
            if self.dialect == "postgresql":
                sql = sql.replace("?", "%s")
            return list(conn.execute(sql, tuple(params)).fetchall())
        finally:
            conn.close()

    def write(self, conn: Any, table: str, columns: Sequence[str], rows: Sequence[Any]) -> None:
        if self.dialect == "sqlite":
            marks = ", ".join("?" * len(columns))
            conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
            return
        with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def stamp_suffix(self) -> str:
        return "" if self.dialect == "sqlite" else "+00"

    def version(self) -> str:
        if self.dialect == "sqlite":
            return f"SQLite {sqlite3.sqlite_version}, no ANALYZE (as served)"
        row = self.query("SHOW server_version")[0]
        note = "" if self.autovacuum else ", autovacuum off: VACUUM (ANALYZE) by the benchmark"
        return f"PostgreSQL {row[0]}{note}"


def _conninfo(url: URL) -> str:
    parts = [f"host={url.host or '127.0.0.1'}", f"port={url.port or 5432}",
             f"user={url.username or 'postgres'}", f"dbname={url.database or 'postgres'}"]  # fmt: skip
    if url.password:
        parts.append(f"password={url.password}")
    return " ".join(parts)


@contextlib.contextmanager
def databases(db_url: str | None, sides: Sequence[str]) -> Iterator[tuple[Path, dict[str, Store]]]:
    """Fresh migrated databases, one per side; PostgreSQL ones are dropped at the end."""
    work = Path(tempfile.mkdtemp(prefix="cb-bench-"))
    created: list[str] = []
    admin = ""
    try:
        stores: dict[str, Store] = {}
        if db_url is None:
            for side in sides:
                url = f"sqlite+aiosqlite:///{work / f'{side}.db'}"
                migrate.upgrade(side, url)  # type: ignore[arg-type]
                stores[side] = Store(side, "sqlite", url)
            yield work, stores
            return
        base = make_url(db_url)
        if base.get_backend_name() != "postgresql" or (base.host or "127.0.0.1") not in LOOPBACK:
            raise SystemExit("--db-url must be postgresql+psycopg://…@127.0.0.1[:port]/…")
        admin = _conninfo(base)
        for side in sides:
            name = f"cb_bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
                autovacuum = conn.execute("SHOW autovacuum").fetchone()[0] == "on"  # type: ignore[index]
            created.append(name)
            target = base.set(drivername="postgresql+psycopg", database=name)
            url = target.render_as_string(hide_password=False)
            migrate.upgrade(side, url)  # type: ignore[arg-type]
            stores[side] = Store(side, "postgresql", url, _conninfo(target), autovacuum)
        yield work, stores
    finally:
        for name in created:
            with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(work, ignore_errors=True)


def without_indexes(store: Store, conn: Any, table: str) -> list[str]:
    """Drop a table's secondary indexes for a bulk load; their DDL, to re-create them."""
    if store.dialect == "sqlite":
        rows = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL", (table,),
        ).fetchall()  # fmt: skip
    else:
        rows = conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = %s AND NOT "
            "EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)", (table,),
        ).fetchall()  # fmt: skip
    for name, _sql in rows:
        conn.execute(f'DROP INDEX "{name}"')
    conn.commit()
    return [sql for _name, sql in rows]


def vacuum_analyze(store: Store, tables: Sequence[str]) -> None:
    """What autovacuum would do after a bulk load (it is off here)."""
    if store.dialect != "postgresql":
        return
    with psycopg.connect(store.conninfo, autocommit=True) as conn:
        for table in tables:
            conn.execute(f"VACUUM (ANALYZE) {table}")


class Autovacuum(threading.Thread):
    """Autovacuum's default rules where the cluster runs without autovacuum (this one does):
    every ``naptime`` seconds, ANALYZE a table with more than 50 + 10 % of its rows changed
    since its last analyze, VACUUM (ANALYZE) one with more than 1,000 + 20 % rows inserted or
    50 + 20 % dead since its last vacuum. Without it, tables that start empty (the sync's
    state) are planned as empty for ever."""

    def __init__(self, stores: Sequence[Store], naptime: float = 60.0) -> None:
        super().__init__(daemon=True)
        self.stores = [s for s in stores if s.dialect == "postgresql" and not s.autovacuum]
        self.naptime = naptime
        self.stop = threading.Event()
        self.started = time.perf_counter()
        self.actions: list[dict[str, Any]] = []

    def run(self) -> None:
        while self.stores and not self.stop.wait(self.naptime):
            for store in self.stores:
                self.visit(store)

    def visit(self, store: Store) -> None:
        with psycopg.connect(store.conninfo, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT s.relname, greatest(c.reltuples, 0), s.n_mod_since_analyze, "
                "s.n_ins_since_vacuum, s.n_dead_tup FROM pg_stat_user_tables s "
                "JOIN pg_class c ON c.oid = s.relid WHERE c.relpersistence = 'p'"
            ).fetchall()  # autovacuum leaves temporary tables alone
            for name, tuples, changed, inserted, dead in rows:
                vacuum = inserted > 1000 + 0.2 * tuples or dead > 50 + 0.2 * tuples
                if not vacuum and changed <= 50 + 0.1 * tuples:
                    continue
                action = "VACUUM (ANALYZE)" if vacuum else "ANALYZE"
                began = time.perf_counter()
                conn.execute(f'{action} "{name}"')
                self.actions.append({
                    "at_s": round(began - self.started, 1), "database": store.side,
                    "table": name, "action": action,
                    "seconds": round(time.perf_counter() - began, 2),
                })  # fmt: skip

    def __enter__(self) -> Autovacuum:
        if self.stores:
            self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        if self.is_alive():
            self.join()


async def create_project(url: str) -> dict[str, Any]:
    db = Database.connect(url)
    try:
        async with db.transaction() as conn:
            made = await projects.create_project(conn, "Bench")
    finally:
        await db.dispose()
    return made.model_dump()


# --- the data ----------------------------------------------------------------------------------


@cache
def _day_text(epoch_day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=epoch_day)).isoformat()


TIME_OF_DAY = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(DAY_S)]


def stamp(epoch_s: int, suffix: str) -> str:
    """A stored time: SQLite's naive UTC text (``suffix`` "+00" for PostgreSQL's COPY)."""
    day, second = divmod(epoch_s, DAY_S)
    return f"{_day_text(day)} {TIME_OF_DAY[second]}.000000{suffix}"


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


USER_PROPS = {(plan, c): _json({"plan": plan, "country": c})
              for plan in ("pro", "free") for c in COUNTRIES}  # fmt: skip
DEVICE_PROPS = {(p, c): _json({"platform": p, "country": c})
                for p in PLATFORMS for c in COUNTRIES}  # fmt: skip
DATA = {(p, c): _json({"platform": p, "country": c, "library": "amplitude-bench/1.0"})
        for p in PLATFORMS for c in COUNTRIES}  # fmt: skip
SONG_PROPS = [_json({"genre": g, "duration": 120 + 30 * i}) for g in GENRES for i in range(4)]
PRICE_PROPS = [_json({"price": k * 0.25, "currency": "USD"}) for k in range(PRICE_STEPS + 1)]
OTHER_PROPS = [_json({"source": s}) for s in SOURCES]


@dataclass
class Truth:
    """Per user (by Amplitude ID), what the cohorts depend on, kept while generating: the
    independent computation the sizes are checked against."""

    users: int
    pro: bytearray
    played_30d: array[int]  # "Song Played" in the last 30 days
    spent_30d: array[int]  # sum of Purchase prices in the last 30 days, in quarters
    bought_60d: bytearray  # any Purchase in the last 60 days
    active_7d: bytearray  # any event in the last 7 days
    events: int = 0

    @classmethod
    def empty(cls, users: int) -> Truth:
        size = users + 1
        return cls(users, bytearray(size), array("l", bytes(8 * size)),
                   array("l", bytes(8 * size)), bytearray(size), bytearray(size))  # fmt: skip

    def members(self) -> dict[str, set[int]]:
        ids = range(1, self.users + 1)
        return {
            "played_3x_30d": {a for a in ids if self.played_30d[a] >= 3},
            "purchase_sum_pro": {a for a in ids if self.spent_30d[a] > 200 and self.pro[a]},
            "active_7d_no_purchase": {a for a in ids if self.active_7d[a]
                                      and not self.bought_60d[a]},
        }  # fmt: skip

    def record(self, aid: int, kind: int, price_steps: int, offset_s: int) -> None:
        """One event of user ``aid``, ``offset_s`` seconds before "now"."""
        self.events += 1
        if offset_s < 7 * DAY_S:
            self.active_7d[aid] = 1
        if kind == SONG and offset_s < 30 * DAY_S:
            self.played_30d[aid] += 1
        elif kind == PURCHASE:
            self.bought_60d[aid] = 1
            if offset_s < 30 * DAY_S:
                self.spent_30d[aid] += price_steps


EVENT_COLUMNS = ("project_id", "amplitude_id", "event_type", "time", "user_id", "device_id",
                 "session_id", "insert_id", "event_properties", "user_properties", "data",
                 "server_received_at")  # fmt: skip
USER_COLUMNS = ("amplitude_id", "project_id", "user_id", "user_properties", "device_properties",
                "first_seen_at", "last_seen_at", "last_active_at", "created_at", "updated_at")  # fmt: skip
DEVICE_COLUMNS = ("project_id", "device_id", "amplitude_id", "last_seen_at")


def _away_from_edges(offset: int) -> int:
    for edge in EDGES_S:
        if abs(offset - edge) < EDGE_GAP_S:
            return offset + 2 * EDGE_GAP_S if offset >= edge else offset - 2 * EDGE_GAP_S
    return offset


@dataclass
class Generator:
    project_id: int
    now_s: int
    suffix: str
    rng: random.Random = field(default_factory=lambda: random.Random(6))

    def user_attrs(self, aid: int) -> tuple[str, str, tuple[str, str]]:
        """(plan, country, (platform, country)) of a user, deterministic by id."""
        country = COUNTRIES[aid % len(COUNTRIES)]
        platform = PLATFORMS[(aid // 7) % len(PLATFORMS)]
        plan = "pro" if (aid * 2654435761) % 1000 < PRO_SHARE * 1000 else "free"
        return plan, country, (platform, country)

    def chunk(
        self, start: int, stop: int, truth: Truth
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        rng, suffix, now = self.rng, self.suffix, self.now_s
        users, devices, events = [], [], []
        created = stamp(now - 60 * DAY_S, suffix)
        for aid in range(start, stop):
            plan, country, device = self.user_attrs(aid)
            truth.pro[aid] = plan == "pro"
            uprops, dprops, data = USER_PROPS[plan, country], DEVICE_PROPS[device], DATA[device]
            user_id, device_id = f"user-{aid}", f"dev-{aid}"
            count = rng.randrange(MAX_EVENTS + 1)
            # 40 % of users are active to this day; the others stopped 0–50 days ago.
            lag = 0 if rng.random() < 0.4 else rng.randrange(50 * DAY_S)
            span = HISTORY_S - lag
            offsets = sorted((_away_from_edges(lag + rng.randrange(span)) for _ in range(count)),
                             reverse=True)  # fmt: skip
            kinds = rng.choices(range(len(EVENT_TYPES)), cum_weights=EVENT_CUM, k=count)
            for offset, kind in zip(offsets, kinds, strict=True):
                steps = 0
                if kind == SONG:
                    props = SONG_PROPS[rng.randrange(len(SONG_PROPS))]
                elif kind == PURCHASE:
                    steps = rng.randrange(1, PRICE_STEPS + 1)
                    props = PRICE_PROPS[steps]
                else:
                    props = OTHER_PROPS[rng.randrange(len(OTHER_PROPS))]
                truth.record(aid, kind, steps, offset)
                moment = stamp(now - offset, suffix)
                events.append((self.project_id, aid, EVENT_TYPES[kind], moment, user_id,
                               device_id, (now - offset) * 1000, None, props, uprops, data,
                               moment))  # fmt: skip
            first = stamp(now - offsets[0], suffix) if offsets else None
            last = stamp(now - offsets[-1], suffix) if offsets else None
            users.append((aid, self.project_id, user_id, uprops, dprops, first, last, last,
                          first or created, last or created))  # fmt: skip
            devices.append((self.project_id, device_id, aid, last or created))
        return users, devices, events


def seed(store: Store, project_id: int, count: int, now_s: int) -> Truth:
    """Users, their devices and their events, written by the raw engine."""
    gen = Generator(project_id, now_s, store.stamp_suffix())
    truth = Truth.empty(count)
    conn = store.raw()
    try:
        indexes = without_indexes(store, conn, "events")
        for start in range(1, count + 1, CHUNK):
            users, devices, events = gen.chunk(start, min(start + CHUNK, count + 1), truth)
            store.write(conn, "users", USER_COLUMNS, users)
            store.write(conn, "devices", DEVICE_COLUMNS, devices)
            store.write(conn, "events", EVENT_COLUMNS, events)
            conn.commit()
            log(f"  {min(start + CHUNK - 1, count):,} users, {truth.events:,} events")
        log("  re-creating the indexes of events …")
        for ddl in indexes:
            conn.execute(ddl)
        if store.dialect == "postgresql":
            conn.execute("SELECT setval(pg_get_serial_sequence('users', 'amplitude_id'), %s)",
                         (count,))  # fmt: skip
        conn.commit()
        found = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        if found != truth.events:
            raise RuntimeError(f"seeding: {found} events stored, {truth.events} generated")
    finally:
        conn.close()
    vacuum_analyze(store, ("users", "devices", "events"))
    return truth


def tick_events(rng: random.Random, gen: Generator, truth: Truth, now_s: int) -> list[Any]:
    """10,000 events of random users in the last minute, as a client sends them; recorded in
    the truth as they will be stored."""
    out = []
    for _ in range(TICK_EVENTS):
        aid = rng.randrange(1, truth.users + 1)
        kind = rng.choices(range(len(EVENT_TYPES)), cum_weights=EVENT_CUM)[0]
        steps, props = 0, orjson.loads(OTHER_PROPS[rng.randrange(len(OTHER_PROPS))])
        if kind == SONG:
            props = orjson.loads(SONG_PROPS[rng.randrange(len(SONG_PROPS))])
        elif kind == PURCHASE:
            steps = rng.randrange(1, PRICE_STEPS + 1)
            props = {"price": steps * 0.25, "currency": "USD"}
        offset = rng.randrange(1, 60)
        truth.record(aid, kind, steps, offset)
        platform, country = gen.user_attrs(aid)[2]
        out.append({"user_id": f"user-{aid}", "device_id": f"dev-{aid}",
                    "event_type": EVENT_TYPES[kind], "time": (now_s - offset) * 1000,
                    "insert_id": uuid.uuid4().hex, "event_properties": props,
                    "platform": platform, "country": country,
                    "library": "amplitude-bench/1.0"})  # fmt: skip
    return out


# --- the server --------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def analytics_server(store: Store, work: Path) -> AsyncIterator[str]:
    """``cohortbridge serve analytics`` on a free loopback port, periodic jobs off."""
    port = free_port()
    env = {**os.environ, "COHORTBRIDGE_ANALYTICS_DATABASE_URL": store.url,
           "COHORTBRIDGE_DATA_DIR": str(work / "var"), "COHORTBRIDGE_LOG_LEVEL": "warning",
           "COHORTBRIDGE_JOBS_IN_SERVER": "false",
           "COHORTBRIDGE_INGEST_DAILY_QUOTA": str(10**9)}  # fmt: skip
    command = [sys.executable, "-m", "cohortbridge.cli", "serve", "analytics", "--port",
               str(port)]  # fmt: skip
    process = subprocess.Popen(command, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_up(base)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=60)


# --- statement timing (in process) -------------------------------------------------------------


@dataclass
class Statements:
    """Every statement a database runs while ``on``: its duration, by normalised SQL."""

    on: bool = False
    log: list[tuple[str, float]] = field(default_factory=list)

    def attach(self, db: Database) -> None:
        starts: list[float] = []

        def before(*_args: Any) -> None:
            starts.append(time.perf_counter())

        def after(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            seconds = time.perf_counter() - starts.pop()
            if self.on:
                self.log.append((_normalised(statement), seconds))

        for engine in {id(db.writer): db.writer, id(db.reader): db.reader}.values():
            event.listen(engine.sync_engine, "before_cursor_execute", before)
            event.listen(engine.sync_engine, "after_cursor_execute", after)

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[tuple[str, float]]]:
        self.log = []
        self.on = True
        try:
            yield self.log
        finally:
            self.on = False


def _normalised(statement: str) -> str:
    text = re.sub(r"\s+", " ", statement).strip()
    text = re.sub(r"\((?:\?|%\(\w+\)s|%s|\$\d+)(?:, (?:\?|%\(\w+\)s|%s|\$\d+))+\)", "(…)", text)
    return text


def top_statements(log: list[tuple[str, float]], limit: int = 6) -> list[dict[str, Any]]:
    totals: dict[str, list[float]] = {}
    for sql, seconds in log:
        totals.setdefault(sql, []).append(seconds)
    ranked = sorted(totals.items(), key=lambda item: -sum(item[1]))[:limit]
    return [{"seconds": round(sum(times), 4), "calls": len(times), "sql": sql[:400]}
            for sql, times in ranked]  # fmt: skip


# --- the run -----------------------------------------------------------------------------------


async def http_compute(http: httpx.AsyncClient, cohort_id: str) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    response = await http.post(f"/api/3/cohorts/{cohort_id}/compute")
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"compute {cohort_id}: {response.status_code} {response.text[:300]}")
    return response.json(), seconds


async def local_compute(
    db: Database, statements: Statements, project_id: int, cohort_id: str
) -> tuple[cohorts.Computed, float, list[tuple[str, float]]]:
    with statements.recording() as log_:
        started = time.perf_counter()
        async with db.write_turn(), db.transaction() as conn:
            row = await cohorts.found(conn, project_id, cohort_id)
            done = await cohorts.compute(conn, row)
        seconds = time.perf_counter() - started
    return done, seconds, list(log_)


def _check(name: str, what: str, got: int, expected: int) -> None:
    if got != expected:
        raise RuntimeError(f"{name}: {what} {got}, expected {expected}")


# --- where the tick's time goes (in process, after the tick) -----------------------------------

# The same three conditions, hand-written for the users who have new events only (a delta
# tick), each a correlated lookup on the (amplitude_id, time) index of events.
NEW_USERS = "(SELECT DISTINCT amplitude_id FROM events WHERE id > {m}) c"
INCREMENTAL = {
    "played_3x_30d": "SELECT c.amplitude_id FROM " + NEW_USERS + " WHERE (SELECT count(*) "
    "FROM events e WHERE e.amplitude_id = c.amplitude_id AND e.time >= {m} AND e.time <= {m} "
    "AND e.event_type = 'Song Played') >= 3",
    "purchase_sum_pro": "SELECT c.amplitude_id FROM " + NEW_USERS + " JOIN users u ON "
    "u.amplitude_id = c.amplitude_id WHERE {plan} = 'pro' AND (SELECT sum({price}) FROM events "
    "e WHERE e.amplitude_id = c.amplitude_id AND e.time >= {m} AND e.time <= {m} AND "
    "e.event_type = 'Purchase') > 50",
    "active_7d_no_purchase": "SELECT c.amplitude_id FROM " + NEW_USERS + " WHERE EXISTS ("
    "SELECT 1 FROM events e WHERE e.amplitude_id = c.amplitude_id AND e.time >= {m} AND "
    "e.time <= {m}) AND NOT EXISTS (SELECT 1 FROM events e WHERE e.amplitude_id = "
    "c.amplitude_id AND e.time >= {m} AND e.time <= {m} AND e.event_type = 'Purchase')",
}
INCREMENTAL_DAYS = {"played_3x_30d": (30,), "purchase_sum_pro": (30,),
                    "active_7d_no_purchase": (7, 60)}  # fmt: skip


def _sqlite_plan(rows: Sequence[Any]) -> list[str]:
    """EXPLAIN QUERY PLAN rows (id, parent, _, detail) as indented lines."""
    depth = {0: -1}
    lines = []
    for node, parent, _unused, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + detail)
    return lines


def _bound(value: Any, dialect: str) -> Any:
    if dialect == "sqlite" and isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
    return value


async def plan_of(conn: AsyncConnection, query: Select[Any]) -> list[str]:
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    if conn.dialect.name == "sqlite":
        names = compiled.positiontup or []
        params = tuple(_bound(compiled.params[name], "sqlite") for name in names)
        rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), params)
        return _sqlite_plan(list(rows))
    rows = await conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params)
    return [str(row[0]) for row in rows]


async def analyse(
    db: Database, project_id: int, name: str, after: set[int], new_users: set[int], max_id: int
) -> dict[str, Any]:
    """The members query's plan; the compiler's query restricted to users with new events;
    the hand-written correlated form for those users (what a delta tick would cost)."""
    now = dt.datetime.now(dt.UTC)
    expected = after & new_users
    async with db.read() as conn:
        dialect = conn.dialect.name
        scope = audience.Scope(dialect, project_id, now)
        query = audience.members_query(vocabulary.parse(DEFINITIONS[name]), scope)
        plan = await plan_of(conn, query)
        newer = select(events_table.c.amplitude_id).where(events_table.c.id > max_id)
        restricted = query.where(users_table.c.amplitude_id.in_(newer))
        started = time.perf_counter()
        found = set((await conn.execute(restricted)).scalars())
        restricted_s = time.perf_counter() - started
        _check(name, "restricted to new users", len(found), len(expected))
        mark = "?" if dialect == "sqlite" else "%s"
        sql = INCREMENTAL[name].format(
            m=mark,
            plan="json_extract(u.user_properties, '$.plan')" if dialect == "sqlite"
            else "(u.user_properties ->> 'plan')",
            price="json_extract(e.event_properties, '$.price')" if dialect == "sqlite"
            else "(e.event_properties ->> 'price')::numeric",
        )  # fmt: skip
        params: list[Any] = [max_id]
        for days in INCREMENTAL_DAYS[name]:
            params += [_bound(now - dt.timedelta(days=days), dialect), _bound(now, dialect)]
        started = time.perf_counter()
        hand = {int(row[0]) for row in await conn.exec_driver_sql(sql, tuple(params))}
        hand_s = time.perf_counter() - started
        if hand != expected:
            raise RuntimeError(f"{name}: hand-written delta {len(hand)}, expected {len(expected)}")
    return {
        "members_query_plan": plan,
        "users_with_new_events": len(new_users),
        "compiled_query_restricted_to_them_s": round(restricted_s, 3),
        "hand_written_delta_s": round(hand_s, 3),
        "hand_written_delta_sql": sql,
        "members_among_them": len(expected),
    }


@dataclass
class Session:
    """What the timed part works with: the server, this process's database, the project."""

    http: httpx.AsyncClient
    db: Database
    statements: Statements
    project: dict[str, Any]
    report: dict[str, dict[str, Any]]
    over_http: dict[str, str] = field(default_factory=dict)  # name → cohort id
    in_process: dict[str, str] = field(default_factory=dict)

    async def create(self) -> None:
        for name, definition in DEFINITIONS.items():
            for ids, title in ((self.over_http, name), (self.in_process, f"{name} (in process)")):
                body = {"name": title, "definition": definition}
                response = await self.http.post("/api/3/cohorts/behavioral", json=body)
                if response.status_code not in (200, 201):
                    raise RuntimeError(f"create {title}: {response.status_code} "
                                       f"{response.text[:300]}")  # fmt: skip
                ids[name] = response.json()["cohortId"]

    async def full(self, expected: dict[str, set[int]]) -> None:
        """First computations (everyone enters), over HTTP then in process."""
        log("full computations over HTTP …")
        for name, cohort_id in self.over_http.items():
            done, seconds = await http_compute(self.http, cohort_id)
            _check(name, "size", done["size"], len(expected[name]))
            _check(name, "entered", done["entered"], len(expected[name]))
            self.report[name].update(size=done["size"], full_http_s=round(seconds, 3))
            log(f"  {name}: {done['size']:,} users in {seconds:.2f} s")
        log("full computations in process, statements timed …")
        for name, cohort_id in self.in_process.items():
            computed, seconds, log_ = await local_compute(
                self.db, self.statements, self.project["project_id"], cohort_id
            )
            _check(name, "size in process", computed.size, len(expected[name]))
            self.report[name].update(full_in_process_s=round(seconds, 3),
                                     full_statements=top_statements(log_))  # fmt: skip
            log(f"  {name}: {seconds:.2f} s")

    async def ingest(self, events: list[Any]) -> float:
        started = time.perf_counter()
        for start in range(0, len(events), TICK_BATCH):
            body = {"api_key": self.project["api_key"],
                    "events": events[start : start + TICK_BATCH]}  # fmt: skip
            response = await self.http.post("/batch", content=orjson.dumps(body),
                                            headers={"Content-Type": "application/json"})  # fmt: skip
            if response.status_code != 200:
                raise RuntimeError(f"batch: {response.status_code} {response.text[:300]}")
        return time.perf_counter() - started

    async def tick(self, before: dict[str, set[int]], after: dict[str, set[int]]) -> None:
        for name, cohort_id in self.over_http.items():
            done, seconds = await http_compute(self.http, cohort_id)
            entered, left = len(after[name] - before[name]), len(before[name] - after[name])
            _check(name, "size after the tick", done["size"], len(after[name]))
            _check(name, "entered", done["entered"], entered)
            _check(name, "left", done["left"], left)
            self.report[name].update(tick_size=done["size"], tick_entered=entered,
                                     tick_left=left, tick_http_s=round(seconds, 3))  # fmt: skip
            log(f"  tick {name}: +{entered} −{left} in {seconds:.2f} s")
        for name, cohort_id in self.in_process.items():
            computed, seconds, log_ = await local_compute(
                self.db, self.statements, self.project["project_id"], cohort_id
            )
            _check(name, "size after the tick, in process", computed.size, len(after[name]))
            self.report[name].update(tick_in_process_s=round(seconds, 3),
                                     tick_statements=top_statements(log_))  # fmt: skip


async def measure(
    store: Store, work: Path, project: dict[str, Any], truth: Truth
) -> tuple[dict[str, dict[str, Any]], float]:
    """Full computations, the tick; the report by cohort and the tick's ingestion time."""
    report: dict[str, dict[str, Any]] = {name: {"definition": d}
                                         for name, d in DEFINITIONS.items()}  # fmt: skip
    db = Database.connect(store.url)
    statements = Statements()
    statements.attach(db)
    auth = (project["api_key"], project["secret_key"])
    try:
        async with (
            analytics_server(store, work) as base,
            httpx.AsyncClient(base_url=base, auth=auth, timeout=600) as http,
        ):
            session = Session(http, db, statements, project, report)
            await session.create()
            before = truth.members()
            await session.full(before)
            log(f"the tick: {TICK_EVENTS:,} events through POST /batch …")
            async with db.read() as conn:
                max_id = int(
                    (await conn.exec_driver_sql("SELECT max(id) FROM events")).scalar_one()
                )
            events = tick_events(random.Random(7), Generator(0, 0, ""), truth, int(time.time()))
            ingest_s = await session.ingest(events)
            log(f"  ingested in {ingest_s:.2f} s")
            after = truth.members()
            await session.tick(before, after)
            log("where the tick's time goes: plans, a delta over the users with new events …")
            new_users = {int(e["user_id"].removeprefix("user-")) for e in events}
            for name in DEFINITIONS:
                report[name]["tick_analysis"] = await analyse(
                    db, project["project_id"], name, after[name], new_users, max_id
                )
    finally:
        await db.dispose()
    return report, ingest_s


async def run(args: argparse.Namespace) -> dict[str, Any]:
    count = QUICK_USERS if args.quick else args.users
    load_start = os.getloadavg()
    with databases(args.db_url, ["analytics"]) as (work, stores):
        store = stores["analytics"]
        project = await create_project(store.url)
        log(f"seeding {count:,} users, ~{10 * count:,} events …")
        started = time.perf_counter()
        truth = seed(store, project["project_id"], count, int(time.time()))
        seed_s = time.perf_counter() - started
        log(f"  seeded {truth.events:,} events in {seed_s:.0f} s")
        report, ingest_s = await measure(store, work, project, truth)
        database = store.version()
        dialect = store.dialect
    targets: dict[str, bool] = {}
    if dialect == "sqlite":
        for name, item in report.items():
            targets[f"full_{name}"] = item["full_http_s"] <= TARGETS_SQLITE["full_s"]
            targets[f"tick_{name}"] = item["tick_http_s"] <= TARGETS_SQLITE["tick_s"]
    return {
        "benchmark": "cohorts",
        "database": database,
        "users": count,
        "events": truth.events - TICK_EVENTS,
        "event_types": len(EVENT_TYPES),
        "history_days": HISTORY_S // DAY_S,
        "seed_seconds": round(seed_s, 1),
        "cohorts": report,
        "sizes_checked_against": "per-user counts kept in Python while generating the events "
        "(and the tick's events)",
        "tick_events": TICK_EVENTS,
        "tick_ingest_s": round(ingest_s, 3),
        "tick_ingest_events_per_s": round(TICK_EVENTS / ingest_s),
        "targets_sqlite": TARGETS_SQLITE,
        "targets_met": targets if dialect == "sqlite" else "targets are set for SQLite",
        "timing": "full_http_s / tick_http_s: wall clock of POST /api/3/cohorts/{id}/compute "
        "against `cohortbridge serve analytics`; *_in_process_s: cohorts.service.compute in "
        "this process on another cohort with the same definition. The machine (2 cores) is "
        "shared with other benchmarks, so absolute times drift",
        **facts(),
        "load_avg_start": [round(x, 2) for x in load_start],
        "load_avg_end": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((__doc__ or "").splitlines()[1:]),
    )
    parser.add_argument("--users", type=int, default=1_000_000, help="users (1000000)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_USERS:,} users")
    parser.add_argument("--db-url", help="a loopback PostgreSQL server, e.g. "
                        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres (default: SQLite)")  # fmt: skip
    args = parser.parse_args()
    if args.users < 1000:
        parser.error("--users must be at least 1000")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    result = asyncio.run(run(args))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
