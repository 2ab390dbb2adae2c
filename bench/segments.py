"""Benchmark: segment sizes and a segment export over real HTTP (issue 4).

What it does, all on this machine (127.0.0.1 only), bounded in size and time:

1. Makes a fresh, migrated engage database (SQLite in a temporary directory by default; with
   ``--db-url`` a throwaway ``cb_bench_<random>`` database on that loopback PostgreSQL server,
   dropped at the end) with one workspace and REST key (``workspaces.service.bootstrap``) and
   the partner ``amplitude``.
2. Seeds it directly with the raw engine (stdlib ``sqlite3`` ``executemany``, or psycopg
   ``COPY``; not measured), rows shaped as ``POST /users/track`` and the cohort import write
   them:

   * N profiles (``user-<id>``, an email, a first name; custom attributes ``plan`` (free, pro,
     team), ``score``, ``vip`` and the time ``signed_up_at``);
   * their custom event history: 0–20 events each (10 N in all, "10,000,000 custom events" at
     the default size) over 5 names (``played`` 40 %), spread over the last 30 days, stored as
     what segments read: ``profile_event_stats`` (count, first, last per profile and name) and
     ``profile_event_days`` (count per profile, name and UTC day). The raw ``custom_events``
     rows are only written with ``--raw-events`` (segments never read them; the JSON says which);
   * Amplitude cohorts c1–c5 holding 30 %, 30 %, 20 %, 10 % and 10 % of the profiles, at random.

   On PostgreSQL (this workplace's cluster runs without autovacuum) it then does what
   autovacuum would do after such a load: ``VACUUM (ANALYZE)`` of the seeded tables.
3. Starts ``python -m cohortbridge.cli serve engage`` on a free port, creates the segments with
   ``POST /segments/create`` and times ``GET /segments/size`` of

   * (a) cohort c1 alone,
   * (b) c1 AND ``plan`` equals "pro" AND "``played`` more than 2 times in the last 7 days",
   * (c) (c2 OR c3 OR c4) AND NOT c5,

   the first request of each (the server's first) and the median of ``--runs`` more. Each size
   is checked against the count computed in Python from the generated data: any difference
   aborts the run.
4. Exports segment (a) (the cohort of 0.3 N users) with ``POST /users/export/segment``, twice:
   fields external_id, email, custom_attributes and custom_events, then external_id alone;
   timed from the POST to the downloaded zip (polling its URL every 50 ms); the zip's users
   are counted and compared with the cohort.
5. With the server stopped, in this process: the same size queries through the compiler
   (``audience.size`` on the server's engine setup), a hand-written SQL query giving the same
   count on the raw driver (a shape to compare the compiler's with), and the query plans
   (``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN (ANALYZE, BUFFERS)`` on PostgreSQL).

Targets (issue 4): each size ≤ 1 s on SQLite, ≤ 0.3 s on PostgreSQL (judged on the median
over HTTP); export ≥ 100,000 users/s. Prints one JSON object on stdout, progress on stderr.

Usage, from the repository root::

    .venv/bin/python -m bench.segments [--profiles 1000000] [--quick] [--runs 7] [--workers 1]
    .venv/bin/python -m bench.segments --raw-events --sqlite-analyze   # see --help
    .venv/bin/python -m bench.segments --db-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import io
import itertools
import os
import random
import shutil
import signal
import sqlite3
import statistics
import tempfile
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import orjson
import psycopg
from sqlalchemy import func, select
from sqlalchemy.engine import URL, make_url

import cohortbridge
from bench.common import RssSampler, facts, log, start_engage, wait_up
from cohortbridge.db import migrate
from cohortbridge.db.engine import SQLITE_PRAGMAS, Database
from cohortbridge.engage.partners import service as partners
from cohortbridge.engage.segments.logic.parse import parse
from cohortbridge.engage.segments.repository import audience
from cohortbridge.engage.workspaces import service as workspaces
from cohortbridge.engage.workspaces.schemas import Bootstrapped
from cohortbridge.kit.ids import object_id

QUICK_PROFILES = 20_000
CHUNK = 50_000  # profiles generated and written per transaction
EVENT_NAMES = ("played", "login", "search", "share", "purchase_viewed")
EVENT_CUM_WEIGHTS = tuple(itertools.accumulate((4, 2, 2, 1, 1)))
MAX_EVENTS = 20  # events per profile: uniform in 0..20, 10 on average
HISTORY_DAYS = 30
COHORT_SHARES = {"c1": 0.3, "c2": 0.3, "c3": 0.2, "c4": 0.1, "c5": 0.1}
PLANS = ("free", "pro", "team")
DAY_S = 86_400
EXPORT_FIELDS = (["external_id", "email", "custom_attributes", "custom_events"], ["external_id"])
TARGET_SIZE_S = {"sqlite": 1.0, "postgresql": 0.3}
TARGET_EXPORT_USERS_PER_S = 100_000
LOOPBACK = ("127.0.0.1", "localhost", "::1")
PG_SETTINGS = ("shared_buffers", "work_mem", "jit", "max_parallel_workers_per_gather")
SEEDED_TABLES = ("profiles", "profile_event_stats", "profile_event_days", "cohorts",
                 "cohort_members", "custom_events")  # fmt: skip


def _cohort(value: str, include: bool = True) -> dict[str, Any]:
    comparison = "includes_value" if include else "excludes_value"
    return {"amplitude_cohorts": {"comparison": comparison, "value": value}}


DEFINITIONS: dict[str, Any] = {
    "a_cohort": _cohort("c1"),
    "b_cohort_and_attribute_and_event": {"AND": [
        _cohort("c1"),
        {"custom_attribute": {"custom_attribute_name": "plan", "comparison": "equals",
                              "value": "pro"}},
        {"custom_event": {"event_name": "played", "comparison": "more_than", "value": 2,
                          "days": 7}},
    ]},
    "c_three_cohorts_minus_one": {"AND": [
        {"OR": [_cohort("c2"), _cohort("c3"), _cohort("c4")]}, _cohort("c5", include=False),
    ]},
}  # fmt: skip
EXPORTED_SEGMENT = "a_cohort"


# --- the data ----------------------------------------------------------------------------------


@cache
def _day_text(epoch_day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=epoch_day)).isoformat()


TIME_OF_DAY = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(DAY_S)]


@dataclass
class Truth:
    """What the seeded data holds, computed while generating it: the independent counts."""

    profiles: int
    pro: bytearray  # 1 where plan == "pro", by profile id
    has_events: bytearray  # 1 where the profile has any event
    played_days: list[tuple[int, int, int]] = field(default_factory=list)  # recent (pid, day, n)
    cohorts: dict[str, list[int]] = field(default_factory=dict)  # sorted profile ids
    events: int = 0
    stats_rows: int = 0
    day_rows: int = 0

    def played_since(self, since: dt.date) -> Counter[int]:
        first = (since - dt.date(1970, 1, 1)).days
        totals: Counter[int] = Counter()
        for pid, day, count in self.played_days:
            if day >= first:
                totals[pid] += count
        return totals

    def expected_sizes(self, now: dt.datetime) -> dict[str, int]:
        """The three sizes by set arithmetic (the compiler's "last 7 days": since the UTC day
        seven days before ``now``)."""
        c = {name: set(ids) for name, ids in self.cohorts.items()}
        played = self.played_since((now - dt.timedelta(days=7)).date())
        b = sum(1 for pid in c["c1"] if self.pro[pid] and played[pid] > 2)
        return {
            "a_cohort": len(c["c1"]),
            "b_cohort_and_attribute_and_event": b,
            "c_three_cohorts_minus_one": len((c["c2"] | c["c3"] | c["c4"]) - c["c5"]),
        }


@dataclass
class Chunk:
    profiles: list[tuple[Any, ...]] = field(default_factory=list)
    stats: list[tuple[Any, ...]] = field(default_factory=list)
    days: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class Generator:
    """Profiles and their event history, deterministic for a seed; times are stored text:
    SQLite's naive UTC ``YYYY-MM-DD HH:MM:SS.ffffff`` (``suffix`` "+00" for PostgreSQL)."""

    workspace_id: str
    now_s: int  # epoch seconds of "now" at seeding
    suffix: str
    raw_events: bool
    rng: random.Random = field(default_factory=lambda: random.Random(4))

    def stamp(self, epoch_s: int) -> str:
        day, second = divmod(epoch_s, DAY_S)
        return f"{_day_text(day)} {TIME_OF_DAY[second]}.000000{self.suffix}"

    def iso(self, epoch_s: int) -> str:
        day, second = divmod(epoch_s, DAY_S)
        return f"{_day_text(day)}T{TIME_OF_DAY[second]}.000Z"

    def chunk(self, start: int, stop: int, truth: Truth) -> Chunk:
        """Profiles with ids ``start`` ≤ id < ``stop``."""
        out = Chunk()
        created = self.stamp(self.now_s - 400 * DAY_S)
        for pid in range(start, stop):
            out.profiles.append(self._profile(pid, created, truth))
            self._history(pid, out, truth)
        return out

    def _profile(self, pid: int, created: str, truth: Truth) -> tuple[Any, ...]:
        rng = self.rng
        plan = PLANS[rng.randrange(3)]
        truth.pro[pid] = plan == "pro"
        custom = {"plan": plan, "score": rng.randrange(100), "vip": rng.random() < 0.1,
                  "signed_up_at": {"$time": self.iso(self.now_s - rng.randrange(365 * DAY_S))}}  # fmt: skip
        return (pid, self.workspace_id, object_id(), f"user-{pid}", f"user-{pid}@example.com",
                f"Name{rng.randrange(1000)}", "{}", orjson.dumps(custom).decode(),
                rng.randrange(10000), 0.0, created, created)  # fmt: skip

    def _history(self, pid: int, out: Chunk, truth: Truth) -> None:
        rng = self.rng
        count = rng.randrange(MAX_EVENTS + 1)
        if not count:
            return
        truth.has_events[pid] = 1
        truth.events += count
        span = HISTORY_DAYS * DAY_S
        names = rng.choices(EVENT_NAMES, cum_weights=EVENT_CUM_WEIGHTS, k=count)
        by_name: dict[str, list[int]] = {}
        for name in names:
            by_name.setdefault(name, []).append(self.now_s - 1 - rng.randrange(span))
        recent = self.now_s // DAY_S - 10
        for name in sorted(by_name):
            times = by_name[name]
            out.stats.append((pid, name, len(times), self.stamp(min(times)),
                              self.stamp(max(times))))  # fmt: skip
            per_day = Counter(t // DAY_S for t in times)
            for day in sorted(per_day):
                out.days.append((pid, name, _day_text(day), per_day[day]))
                if name == "played" and day >= recent:
                    truth.played_days.append((pid, day, per_day[day]))
            if self.raw_events:
                out.events.extend((self.workspace_id, pid, name, self.stamp(t), None, None)
                                  for t in sorted(times))  # fmt: skip
        truth.stats_rows += len(by_name)


def draw_cohorts(rng: random.Random, count: int) -> dict[str, list[int]]:
    return {
        name: sorted(rng.sample(range(1, count + 1), round(share * count)))
        for name, share in COHORT_SHARES.items()
    }


# --- the databases -----------------------------------------------------------------------------


class Sink(Protocol):
    def write(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """Add rows (values as stored text or numbers) to a table."""

    def commit(self) -> None: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def close(self) -> None: ...


class SqliteSink:
    def __init__(self, path: Path, *, reading: bool = False) -> None:
        self.conn = sqlite3.connect(path)
        # Reading: the server's PRAGMAs (its page cache); seeding: no sync, no foreign keys.
        for pragma in SQLITE_PRAGMAS if reading else ("PRAGMA journal_mode=WAL",
                                                      "PRAGMA synchronous=OFF"):  # fmt: skip
            self.conn.execute(pragma)

    def write(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        marks = ", ".join("?" * len(columns))
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
        self.conn.executemany(sql, rows)

    def commit(self) -> None:
        self.conn.commit()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, tuple(params)).fetchall()

    def close(self) -> None:
        self.conn.close()


class PostgresSink:
    def __init__(self, conninfo: str) -> None:
        self.conn = psycopg.connect(conninfo)
        # Seeding only: the rows are consistent by construction, so skip the foreign-key
        # triggers (millions of lookups) while copying.
        self.conn.execute("SET session_replication_role = replica")

    def write(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        with self.conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def commit(self) -> None:
        self.conn.commit()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        rows = self.conn.execute(sql.replace("?", "%s"), tuple(params)).fetchall()
        self.conn.commit()
        return rows

    def close(self) -> None:
        self.conn.close()


@dataclass
class Store:
    dialect: str
    url: str  # SQLAlchemy async URL, as the server takes it
    work: Path
    conninfo: str = ""  # PostgreSQL
    autovacuum: bool = True

    def sink(self, *, reading: bool = False) -> Sink:
        if self.dialect == "sqlite":
            return SqliteSink(Path(str(make_url(self.url).database)), reading=reading)
        return PostgresSink(self.conninfo)

    def version(self) -> str:
        if self.dialect == "sqlite":
            return f"SQLite {sqlite3.sqlite_version}"
        with psycopg.connect(self.conninfo) as conn:
            shown = [str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
                     for name in ("server_version", *PG_SETTINGS)]  # fmt: skip
        settings = ", ".join(
            f"{name} {value}" for name, value in zip(PG_SETTINGS, shown[1:], strict=True)
        )
        return f"PostgreSQL {shown[0]} ({settings})"


def _conninfo(url: URL) -> str:
    parts = [f"host={url.host or '127.0.0.1'}", f"port={url.port or 5432}",
             f"user={url.username or 'postgres'}", f"dbname={url.database or 'postgres'}"]  # fmt: skip
    if url.password:
        parts.append(f"password={url.password}")
    return " ".join(parts)


@contextlib.contextmanager
def store(db_url: str | None) -> Iterator[Store]:
    """A fresh migrated engage database; a PostgreSQL one is dropped at the end."""
    work = Path(tempfile.mkdtemp(prefix="cb-bench-"))
    try:
        if db_url is None:
            url = f"sqlite+aiosqlite:///{work / 'engage.db'}"
            migrate.upgrade("engage", url)
            yield Store("sqlite", url, work)
            return
        base = make_url(db_url)
        if base.get_backend_name() != "postgresql" or (base.host or "127.0.0.1") not in LOOPBACK:
            raise SystemExit("--db-url must be postgresql+psycopg://…@127.0.0.1[:port]/…")
        admin = _conninfo(base)
        name = f"cb_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
            autovacuum = conn.execute("SHOW autovacuum").fetchone()[0] == "on"  # type: ignore[index]
        try:
            target = base.set(drivername="postgresql+psycopg", database=name)
            url = target.render_as_string(hide_password=False)
            migrate.upgrade("engage", url)
            yield Store("postgresql", url, work, _conninfo(target), autovacuum)
        finally:
            with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def bootstrap(url: str) -> Bootstrapped:
    db = Database.connect(url)
    try:
        async with db.transaction() as conn:
            boot = await workspaces.bootstrap(conn, "Bench", "http://127.0.0.1")
            await partners.create_partner_key(conn, "amplitude")
            return boot
    finally:
        await db.dispose()


PROFILE_COLUMNS = ("id", "workspace_id", "braze_id", "external_id", "email", "first_name",
                   "standard", "custom_attributes", "random_bucket", "total_revenue",
                   "created_at", "updated_at")  # fmt: skip
STATS_COLUMNS = ("profile_id", "name", "count", "first_at", "last_at")
DAYS_COLUMNS = ("profile_id", "name", "day", "count")
EVENT_COLUMNS = ("workspace_id", "profile_id", "name", "time", "app_id", "properties")


def seed(store: Store, workspace_id: str, count: int, raw_events: bool) -> Truth:
    """Profiles, their event history and the cohorts, written by the raw engine."""
    now_s = int(time.time())
    gen = Generator(workspace_id, now_s, "" if store.dialect == "sqlite" else "+00", raw_events)
    truth = Truth(count, bytearray(count + 1), bytearray(count + 1))
    sink = store.sink()
    try:
        for start in range(1, count + 1, CHUNK):
            chunk = gen.chunk(start, min(start + CHUNK, count + 1), truth)
            sink.write("profiles", PROFILE_COLUMNS, chunk.profiles)
            sink.write("profile_event_stats", STATS_COLUMNS, chunk.stats)
            sink.write("profile_event_days", DAYS_COLUMNS, chunk.days)
            if raw_events:
                sink.write("custom_events", EVENT_COLUMNS, chunk.events)
            sink.commit()
            truth.day_rows += len(chunk.days)
            log(f"  {min(start + CHUNK - 1, count):,} profiles")
        truth.cohorts = draw_cohorts(gen.rng, count)
        _seed_cohorts(sink, workspace_id, gen.stamp(now_s), truth.cohorts)
        if store.dialect == "postgresql":
            sink.query("SELECT setval(pg_get_serial_sequence('profiles', 'id'), ?)", (count,))
        verify_seed(sink, truth, raw_events)
    finally:
        sink.close()
    return truth


def verify_seed(sink: Sink, truth: Truth, raw_events: bool) -> None:
    """The rows written are the rows generated."""
    expected = {
        "profiles": truth.profiles,
        "profile_event_stats": truth.stats_rows,
        "profile_event_days": truth.day_rows,
        "cohort_members": sum(len(ids) for ids in truth.cohorts.values()),
        "custom_events": truth.events if raw_events else 0,
    }
    for table, rows in expected.items():
        found = int(sink.query(f"SELECT count(*) FROM {table}")[0][0])
        if found != rows:
            raise RuntimeError(f"seeding: {table} has {found} rows, expected {rows}")
    days = int(sink.query("SELECT sum(count) FROM profile_event_days")[0][0])
    if days != truth.events:
        raise RuntimeError(f"seeding: the per-day counts add up to {days}, not {truth.events}")


def _seed_cohorts(sink: Sink, workspace_id: str, stamp: str, members: dict[str, list[int]]) -> None:
    columns = ("workspace_id", "partner", "cohort_id", "name", "version", "created_at",
               "updated_at")  # fmt: skip
    sink.write("cohorts", columns, [(workspace_id, "amplitude", name, f"Cohort {name}", 1, stamp,
                                     stamp) for name in members])  # fmt: skip
    sink.commit()
    ids = dict(sink.query("SELECT cohort_id, id FROM cohorts WHERE workspace_id = ?",
                          (workspace_id,)))  # fmt: skip
    for name, pids in members.items():
        rows = [(ids[name], pid, stamp, 1) for pid in pids]
        sink.write("cohort_members", ("cohort", "profile_id", "added_at", "added_in"), rows)
    sink.commit()


def vacuum_analyze(store: Store) -> None:
    """What autovacuum does after a bulk load (insert threshold, then ANALYZE): the visibility
    map and the statistics the planner uses."""
    with psycopg.connect(store.conninfo, autocommit=True) as conn:
        for table in SEEDED_TABLES:
            conn.execute(f"VACUUM (ANALYZE) {table}")


def sqlite_analyze(store: Store) -> None:
    conn = sqlite3.connect(str(make_url(store.url).database))
    conn.execute("ANALYZE")
    conn.close()


# --- over HTTP ---------------------------------------------------------------------------------


@dataclass
class SizeTiming:
    size: int
    cold_s: float
    runs_s: list[float]


async def create_segments(http: httpx.AsyncClient) -> dict[str, str]:
    ids = {}
    for name, definition in DEFINITIONS.items():
        response = await http.post("/segments/create", json={"name": name, "filter": definition})
        if response.status_code != 201:
            raise RuntimeError(f"create {name}: {response.status_code} {response.text[:300]}")
        ids[name] = response.json()["segment_id"]
    return ids


async def _size(http: httpx.AsyncClient, segment_id: str) -> tuple[int, float]:
    started = time.perf_counter()
    response = await http.get("/segments/size", params={"segment_id": segment_id})
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"size: {response.status_code} {response.text[:300]}")
    return int(response.json()["size"]), seconds


async def time_sizes(
    http: httpx.AsyncClient, segment_ids: dict[str, str], runs: int
) -> dict[str, SizeTiming]:
    """The first request of each segment (the server's first queries), then ``runs`` rounds."""
    timings = {}
    for name, segment_id in segment_ids.items():
        size, cold = await _size(http, segment_id)
        timings[name] = SizeTiming(size, cold, [])
        log(f"  {name}: {size:,} users, first request {cold:.3f} s")
    for _ in range(runs):
        for name, segment_id in segment_ids.items():
            size, seconds = await _size(http, segment_id)
            if size != timings[name].size:
                raise RuntimeError(f"{name}: size changed from {timings[name].size} to {size}")
            timings[name].runs_s.append(seconds)
    return timings


@dataclass
class ExportResult:
    fields: list[str]
    seconds: float
    ids: list[int]  # the profile ids of the exported users (from their external ids)
    with_events: int  # users exported with custom_events
    keys: Counter[str]  # how many users have each exported key
    zip_bytes: int
    member_files: int
    server_rss_peak_mb: float


async def export(
    http: httpx.AsyncClient, segment_id: str, fields: list[str], server_pid: int
) -> ExportResult:
    """POST the export, poll its URL every 50 ms until the zip is there, download it."""
    sampler = RssSampler(server_pid)
    sampler.start()
    started = time.perf_counter()
    response = await http.post(
        "/users/export/segment", json={"segment_id": segment_id, "fields_to_export": fields}
    )
    if response.status_code != 201:
        raise RuntimeError(f"export: {response.status_code} {response.text[:300]}")
    # The URL names the configured public address; ask this server for its path.
    path = urlsplit(response.json()["url"]).path
    while True:  # bounded by --timeout (run)
        download = await http.get(path)
        if download.status_code != 404:
            break
        await asyncio.sleep(0.05)
    seconds = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    if download.status_code != 200:
        raise RuntimeError(f"download: {download.status_code} {download.text[:300]}")
    result = ExportResult(fields, seconds, [], 0, Counter(), len(download.content), 0,
                          round(sampler.peak / 2**20, 1))  # fmt: skip
    with zipfile.ZipFile(io.BytesIO(download.content)) as zf:
        result.member_files = len(zf.namelist())
        for name in zf.namelist():
            for line in zf.read(name).splitlines():
                user = orjson.loads(line)
                result.ids.append(int(user["external_id"].removeprefix("user-")))
                result.with_events += bool(user.get("custom_events"))
                result.keys.update(user.keys())
    return result


def check_export(result: ExportResult, truth: Truth) -> None:
    """Every member of c1 exactly once, with the fields asked for."""
    expected = truth.cohorts["c1"]
    if sorted(result.ids) != expected:
        raise RuntimeError(f"export of {result.fields}: {len(result.ids)} users, "
                           f"expected {len(expected)}")  # fmt: skip
    if set(result.keys) - set(result.fields):
        raise RuntimeError(f"export of {result.fields}: also {sorted(result.keys)}")
    # Every profile has an email and custom attributes; custom_events when it has events.
    wanted = {"email": len(expected), "custom_attributes": len(expected),
              "custom_events": sum(1 for pid in expected if truth.has_events[pid])}  # fmt: skip
    for key in set(result.fields) & set(wanted):
        if result.keys[key] != wanted[key]:
            raise RuntimeError(f"export: {result.keys[key]} users with {key}, expected "
                               f"{wanted[key]}")  # fmt: skip


# --- in this process ---------------------------------------------------------------------------


def _median_time(samples: list[float]) -> float:
    return round(statistics.median(samples), 4)


def _sqlite_plan(rows: list[tuple[Any, ...]]) -> list[str]:
    """EXPLAIN QUERY PLAN rows (id, parent, _, detail) as indented lines."""
    depth = {0: -1}
    lines = []
    for node, parent, _unused, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + detail)
    return lines


def size_statement(tree: Any, scope: audience.Scope) -> Any:
    """The statement ``audience.size`` runs."""
    return select(func.count()).select_from(audience.members_query(tree, scope).subquery())


async def compiled_queries(url: str, workspace_id: str, runs: int) -> dict[str, dict[str, Any]]:
    """Per definition: the in-process time of ``audience.size``, its SQL and its plan."""
    db = Database.connect(url)
    out: dict[str, dict[str, Any]] = {}
    try:
        for name, definition in DEFINITIONS.items():
            tree = parse(definition)
            async with db.read() as conn:
                scope = audience.Scope(conn.dialect.name, workspace_id, dt.datetime.now(dt.UTC))
                samples = []
                for _ in range(runs):
                    started = time.perf_counter()
                    size = await audience.size(conn, tree, scope)
                    samples.append(time.perf_counter() - started)
                sql = str(size_statement(tree, scope).compile(
                    dialect=conn.dialect, compile_kwargs={"literal_binds": True}))  # fmt: skip
                explain = ("EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite"
                           else "EXPLAIN (ANALYZE, BUFFERS) ")  # fmt: skip
                plan = [tuple(row) for row in await conn.exec_driver_sql(explain + sql)]
            lines = _sqlite_plan(plan) if conn.dialect.name == "sqlite" else [r[0] for r in plan]
            out[name] = {"size": size, "median_s": _median_time(samples), "sql": sql,
                         "plan": lines}  # fmt: skip
    finally:
        await db.dispose()
    return out


HAND_WRITTEN = {
    "a_cohort": "SELECT count(*) FROM cohort_members WHERE cohort = {c1}",
    "b_cohort_and_attribute_and_event": (
        "SELECT count(*) FROM cohort_members m JOIN profiles p ON p.id = m.profile_id "
        "WHERE m.cohort = {c1} AND p.custom_attributes ->> 'plan' = 'pro' AND "
        "(SELECT sum(e.count) FROM profile_event_days e WHERE e.profile_id = m.profile_id "
        "AND e.name = 'played' AND e.day >= '{since}') > 2"
    ),
    "c_three_cohorts_minus_one": (
        "SELECT count(*) FROM (SELECT profile_id FROM cohort_members WHERE cohort IN "
        "({c2}, {c3}, {c4}) EXCEPT SELECT profile_id FROM cohort_members WHERE cohort = {c5}) x"
    ),
}


def hand_written(store: Store, runs: int) -> dict[str, dict[str, Any]]:
    """The same counts as plain SQL on the raw driver (one workspace: a cohort's members are
    its profiles, so no join on ``profiles`` unless a condition needs one)."""
    sink = store.sink(reading=True)
    try:
        values: dict[str, Any] = dict(sink.query("SELECT cohort_id, id FROM cohorts"))
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=7)
        values["since"] = since.date().isoformat()
        out = {}
        for name, template in HAND_WRITTEN.items():
            sql = template.format(**values)
            samples, size = [], 0
            for _ in range(runs):
                started = time.perf_counter()
                size = int(sink.query(sql)[0][0])
                samples.append(time.perf_counter() - started)
            out[name] = {"size": size, "median_s": _median_time(samples), "sql": sql}
    finally:
        sink.close()
    return out


# --- the run -----------------------------------------------------------------------------------


def code_commit() -> str:
    """The commit checked out where the package lives, read from ``.git`` (no git process)."""
    git = Path(cohortbridge.__file__).resolve().parents[2] / ".git"
    with contextlib.suppress(OSError):
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:12]
        ref = head.removeprefix("ref: ")
        if (git / ref).exists():
            return (git / ref).read_text().strip()[:12]
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0][:12]
    return "unknown"


@contextlib.asynccontextmanager
async def server(store: Store, workers: int) -> AsyncIterator[tuple[int, str]]:
    env = {"COHORTBRIDGE_RATE_DEFAULT": str(10**9)}
    process, base = start_engage(store.url, store.work, workers, env)
    try:
        await wait_up(base)
        yield process.pid, base
    finally:
        process.terminate()
        process.wait(timeout=60)


@dataclass
class HttpResults:
    segment_ids: dict[str, str]
    sizes: dict[str, SizeTiming]
    exports: list[ExportResult]
    expected: dict[str, int]


async def over_http(store: Store, key: str, truth: Truth, args: argparse.Namespace) -> HttpResults:
    async with server(store, args.workers) as (pid, base):
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=600) as http:
            await http.get("/healthz")  # the connection, before anything is timed
            segment_ids = await create_segments(http)
            log(f"sizes: first requests, then {args.runs} rounds …")
            sizes = await time_sizes(http, segment_ids, args.runs)
            expected = truth.expected_sizes(dt.datetime.now(dt.UTC))
            for name, timing in sizes.items():
                if timing.size != expected[name]:
                    raise RuntimeError(f"{name}: size {timing.size}, expected {expected[name]}")
            exports = []
            for fields in EXPORT_FIELDS:
                log(f"export of {len(truth.cohorts['c1']):,} users, fields {fields} …")
                result = await export(http, segment_ids[EXPORTED_SEGMENT], fields, pid)
                check_export(result, truth)
                log(f"  {result.seconds:.2f} s, {len(result.ids) / result.seconds:,.0f} users/s")
                exports.append(result)
    return HttpResults(segment_ids, sizes, exports, expected)


def size_report(
    name: str, timing: SizeTiming, compiled: dict[str, Any], raw: dict[str, Any], dialect: str
) -> dict[str, Any]:
    median = statistics.median(timing.runs_s)
    if compiled["size"] != timing.size or raw["size"] != timing.size:
        raise RuntimeError(f"{name}: in-process sizes {compiled['size']}, {raw['size']}, "
                           f"over HTTP {timing.size}")  # fmt: skip
    return {
        "definition": DEFINITIONS[name],
        "size": timing.size,
        "http_first_s": round(timing.cold_s, 4),
        "http_median_s": round(median, 4),
        "http_min_s": round(min(timing.runs_s), 4),
        "http_max_s": round(max(timing.runs_s), 4),
        "target_s": TARGET_SIZE_S[dialect],
        "meets_target": median <= TARGET_SIZE_S[dialect],
        "sql_in_process_median_s": compiled["median_s"],
        "hand_written_sql_median_s": raw["median_s"],
        "hand_written_sql": raw["sql"],
        "compiled_sql": compiled["sql"],
        "plan": compiled["plan"],
    }


def export_report(result: ExportResult) -> dict[str, Any]:
    rate = len(result.ids) / result.seconds
    return {
        "fields": result.fields,
        "users": len(result.ids),
        "seconds": round(result.seconds, 3),
        "users_per_s": round(rate),
        "target_users_per_s": TARGET_EXPORT_USERS_PER_S,
        "meets_target": rate >= TARGET_EXPORT_USERS_PER_S,
        "zip_mb": round(result.zip_bytes / 2**20, 1),
        "member_files": result.member_files,
        "server_rss_peak_mb": result.server_rss_peak_mb,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    count = QUICK_PROFILES if args.quick else args.profiles
    with store(args.db_url) as db:
        boot = await bootstrap(db.url)
        log(f"seeding {count:,} profiles, ~{10 * count:,} events of history, 5 cohorts …")
        started = time.perf_counter()
        truth = seed(db, boot.workspace_id, count, args.raw_events)
        if db.dialect == "postgresql":
            log("VACUUM (ANALYZE) of the seeded tables (autovacuum's part) …")
            vacuum_analyze(db)
        elif args.sqlite_analyze:
            sqlite_analyze(db)
        seed_s = time.perf_counter() - started
        log(f"  seeded in {seed_s:.0f} s")
        async with asyncio.timeout(args.timeout):
            results = await over_http(db, boot.rest_api_key, truth, args)
        log("in this process: compiled queries, hand-written SQL, plans …")
        compiled = await compiled_queries(db.url, boot.workspace_id, args.runs)
        raw = hand_written(db, args.runs)
        database = db.version()
        if db.dialect == "postgresql" and not db.autovacuum:
            database += ", autovacuum off: VACUUM (ANALYZE) of the seeded tables by the benchmark"
        if db.dialect == "sqlite":
            database += ", ANALYZE run" if args.sqlite_analyze else ", no ANALYZE (as served)"
        dialect = db.dialect
    sizes = {name: size_report(name, results.sizes[name], compiled[name], raw[name], dialect)
             for name in DEFINITIONS}  # fmt: skip
    exports = [export_report(result) for result in results.exports]
    return {
        "benchmark": "segments",
        "database": database,
        "profiles": count,
        "custom_events": truth.events,
        "custom_events_rows_written": truth.events if args.raw_events else 0,
        "custom_events_note": "events stored as the per-profile history segments read "
        "(profile_event_stats, profile_event_days)"
        + (
            "; raw custom_events rows written too"
            if args.raw_events
            else "; raw custom_events rows not written (segments never read them; --raw-events)"
        ),
        "history_rows": {
            "profile_event_stats": truth.stats_rows,
            "profile_event_days": truth.day_rows,
        },
        "event_names": dict(zip(EVENT_NAMES, (0.4, 0.2, 0.2, 0.1, 0.1), strict=True)),
        "history_days": HISTORY_DAYS,
        "cohorts": {name: len(ids) for name, ids in truth.cohorts.items()},
        "seed_seconds": round(seed_s, 1),
        "sizes": sizes,
        "sizes_checked_against": "counts computed in Python from the generated data",
        "http_first_s_is": "the first size request of each segment in a fresh server process "
        "(empty database page cache in the server; the OS file cache is warm from seeding)",
        "export_of": f"{EXPORTED_SEGMENT} ({len(truth.cohorts['c1']):,} users)",
        "exports": exports,
        "targets_met": {
            **{f"size_{name}": s["meets_target"] for name, s in sizes.items()},
            **{f"export_{'+'.join(e['fields'])}": e["meets_target"] for e in exports},
        },
        "runs": args.runs,
        "workers": args.workers,
        "timing": "wall clock of the HTTP request (client on the same machine); the machine "
        "is shared, so absolute times drift",
        "code": code_commit(),
        **facts(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((__doc__ or "").splitlines()[1:]),
    )
    parser.add_argument("--profiles", type=int, default=1_000_000, help="profiles (1000000)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_PROFILES:,} profiles")
    parser.add_argument("--runs", type=int, default=7, help="timed size requests after the first")
    parser.add_argument(
        "--db-url",
        help="a loopback PostgreSQL server, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/"
        "postgres: a throwaway database is created there and dropped (default: SQLite)",
    )
    parser.add_argument("--raw-events", action="store_true",
                        help="also write the raw custom_events rows (not read by segments)")  # fmt: skip
    parser.add_argument("--sqlite-analyze", action="store_true",
                        help="run ANALYZE on SQLite after seeding (the server never does)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="server worker processes (1)")
    parser.add_argument("--timeout", type=float, default=1800, help="bound of the HTTP part, s")
    args = parser.parse_args()
    if args.profiles < 100 or args.runs < 1:
        parser.error("--profiles must be at least 100 and --runs positive")
    # Stopped by a timeout: unwind as on Ctrl-C, so the server stops and the database is dropped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    result = asyncio.run(run(args))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
