"""Benchmark: ``POST /users/track`` over real HTTP (issue 2).

What it does, all on this machine (127.0.0.1 only), bounded in size and time:

1. Makes a fresh, migrated engage database (SQLite in a temporary directory by default; with
   ``--db-url`` a throwaway database created on that loopback PostgreSQL server and dropped at
   the end) with one workspace and REST key (``workspaces.service.bootstrap``).
2. Starts the real server, ``python -m cohortbridge.cli serve engage --workers 2``, as a
   subprocess on a free port, with the ``/users/track`` rate limit lifted
   (``COHORTBRIDGE_RATE_USERS_TRACK``). Its worker processes take turns as SQLite's writer
   (``db/engine.py``, ``WriterLock``).
3. With ``--concurrency`` clients (``bench.common.LeanClient``: one keep-alive connection each,
   requests sent as prepared bytes so that the load generator takes little of the server's
   CPU; all in this process: the JSON reports this process's CPU time), sends requests of 75 attributes objects + 75 event objects. The clients
   join 50 ms apart, and the JSON shows how their connections spread over the server's
   processes (``connections_per_server_process``, one count per process of the server):

   * phase ``create``: N new profiles (each attributes object has ``external_id``,
     ``first_name``, a string, a number and a boolean; each event a name out of five, an
     ISO-8601 time and one property), one event each;
   * phase ``update``: the same N profiles again (attributes changed, one more event each).

   Objects counted = attributes objects + event objects (4N in all).
4. Checks that the rows arrived (profiles, raw events, per-profile and per-day event counts).
5. Measures, in the same run and after the server has stopped, the raw engine doing the same
   row writes on a second fresh database of the same schema: stdlib ``sqlite3`` (or
   ``psycopg``), one connection, bare ``executemany``, one transaction per request, the same
   PRAGMAs as the server. Per request, mirroring ``engage/users/service/track.py``: look up
   the ids of the addressed external ids; insert the new profiles (and read back their ids)
   or update the existing ones' columns and custom attributes; insert the ``custom_events``
   rows; upsert ``profile_event_stats`` and ``profile_event_days``; upsert the ``datapoints``
   ledger. (The raw engine does not read the old attribute state, which the server must do
   to merge updates: that is part of the overhead measured.)

On a PostgreSQL cluster with autovacuum off (this workplace's, set up for CI), the benchmark
applies autovacuum's ANALYZE rule itself, to both databases, while they are written (class
``Analyzer``): with no statistics at all the planner looks up external ids through the
``(workspace_id, phone)`` index, i.e. scans the whole workspace per request, and the run
measures that artefact instead (about 1,000 objects/s at 100,000 profiles).

Prints one JSON object on stdout (progress on stderr): objects/s overall and per phase,
``raw_objects_per_s``, ``ratio_to_raw`` = ours / raw, latencies, CPU seconds of server and
clients, peak server RSS, the machine, and which commit of the code was measured.

Usage, from the repository root::

    .venv/bin/python -m bench.users_track [--profiles 100000] [--concurrency 4] [--quick]
    .venv/bin/python -m bench.users_track --db-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python -m bench.users_track --py-spy /tmp/users_track.txt   # profile the server
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
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psutil
import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy.engine import make_url

from bench.common import (
    LeanClient,
    RssSampler,
    code_version,
    connections_per_process,
    cpu_model,
    cpu_seconds,
    facts,
    log,
    percentile,
    port_of,
    start_engage,
    start_py_spy,
    wait_up,
)
from cohortbridge.db import migrate
from cohortbridge.db.engine import SQLITE_PRAGMAS, Database
from cohortbridge.engage.workspaces import service as workspaces
from cohortbridge.engage.workspaces.schemas import Bootstrapped
from cohortbridge.kit.ids import object_id

PER_REQUEST = 75
EVENT_NAMES = ("song_played", "login", "purchase_viewed", "search", "share")
QUICK_PROFILES = 6_000
RAMP_S = 0.05
LOOPBACK = ("127.0.0.1", "localhost", "::1")


# --- the requests -------------------------------------------------------------------------


def bodies(count: int, phase: str) -> list[bytes]:
    """Request bodies of one phase: profiles ``user-0 … user-{count-1}``, 75 per request."""
    rng = random.Random(7 if phase == "create" else 11)
    out = []
    for start in range(0, count, PER_REQUEST):
        ids = [f"user-{i}" for i in range(start, min(start + PER_REQUEST, count))]
        attributes = [
            {"external_id": uid, "first_name": f"Name{rng.randrange(1000)}",
             "plan": rng.choice(("free", "pro", "team")), "score": rng.randrange(100),
             "vip": rng.random() < 0.1}
            for uid in ids
        ]  # fmt: skip
        events = [
            {"external_id": uid, "name": rng.choice(EVENT_NAMES),
             "time": f"2026-11-{rng.randrange(1, 21):02d}T{rng.randrange(24):02d}:00:00Z",
             "properties": {"n": rng.randrange(10)}}
            for uid in ids
        ]  # fmt: skip
        out.append(orjson.dumps({"attributes": attributes, "events": events}))
    return out


def objects_in(payloads: list[bytes]) -> int:
    total = 0
    for payload in payloads:
        body = orjson.loads(payload)
        total += len(body["attributes"]) + len(body["events"])
    return total


@dataclass
class PhaseResult:
    seconds: float
    latencies: list[float]
    client_cpu_s: float
    server_cpu_s: float
    connections: list[int]


async def send(
    base: str, key: str, payloads: list[bytes], concurrency: int, server: psutil.Process
) -> PhaseResult:
    """Every payload once, ``concurrency`` requests in flight; any answer but 201 aborts."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for payload in payloads:
        queue.put_nowait(payload)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    latencies: list[float] = []

    async def client(http: LeanClient, delay: float) -> None:
        await asyncio.sleep(delay)
        while not queue.empty():
            payload = queue.get_nowait()
            sent = time.perf_counter()
            status, answer = await http.post("/users/track", payload)
            latencies.append(time.perf_counter() - sent)
            if status != 201:
                raise RuntimeError(f"{status} {answer[:300]!r}")

    clients = [LeanClient(base, headers) for _ in range(concurrency)]
    try:
        cpu, server_cpu = time.process_time(), cpu_seconds(server)
        started = time.perf_counter()
        # Clients join one after another while the earlier ones send (a ramp-up of
        # RAMP_S each), as connections arrive under real traffic: opened all at once, the
        # first idle worker process accepts every one of them (--workers).
        sending = asyncio.gather(*(client(http, i * RAMP_S) for i, http in enumerate(clients)))
        await asyncio.sleep(concurrency * RAMP_S + 0.5)
        connections = connections_per_process(server, port_of(base))
        await sending
        seconds = time.perf_counter() - started
        return PhaseResult(
            seconds,
            latencies,
            time.process_time() - cpu,
            cpu_seconds(server) - server_cpu,
            connections,
        )
    finally:
        for http in clients:
            await http.aclose()


# --- the databases -----------------------------------------------------------------------


@dataclass
class Store:
    """Two fresh migrated engage databases of one engine: the server's and the raw engine's."""

    dialect: str
    server_url: str  # SQLAlchemy async URL, as the server takes it
    raw_url: str
    work: Path
    autovacuum: bool = True

    def raw_connect(self, url: str | None = None) -> Any:
        parsed = make_url(url or self.raw_url)
        if self.dialect == "sqlite":
            conn = sqlite3.connect(str(parsed.database), isolation_level=None)
            for pragma in SQLITE_PRAGMAS:
                conn.execute(pragma)
            return conn
        return psycopg.connect(_conninfo(parsed), autocommit=True)

    def version(self) -> str:
        if self.dialect == "sqlite":
            return f"SQLite {sqlite3.sqlite_version}"
        with self.raw_connect() as conn:
            return "PostgreSQL " + str(conn.execute("SHOW server_version").fetchone()[0])


def _conninfo(url: Any) -> str:
    parts = [f"host={url.host or '127.0.0.1'}", f"port={url.port or 5432}",
             f"user={url.username or 'postgres'}", f"dbname={url.database or 'postgres'}"]  # fmt: skip
    if url.password:
        parts.append(f"password={url.password}")
    return " ".join(parts)


@contextlib.contextmanager
def stores(db_url: str | None) -> Iterator[Store]:
    work = Path(tempfile.mkdtemp(prefix="cb-bench-"))
    try:
        if db_url is None:
            urls = [f"sqlite+aiosqlite:///{work / name}" for name in ("engage.db", "raw.db")]
            for url in urls:
                migrate.upgrade("engage", url)
            yield Store("sqlite", urls[0], urls[1], work)
            return
        base = make_url(db_url)
        if base.get_backend_name() != "postgresql" or (base.host or "127.0.0.1") not in LOOPBACK:
            raise SystemExit("--db-url must be postgresql+psycopg://…@127.0.0.1[:port]/…")
        admin = _conninfo(base)
        names = [f"cb_bench_{uuid.uuid4().hex[:10]}_{role}" for role in ("server", "raw")]
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            for name in names:
                conn.execute(f'CREATE DATABASE "{name}"')
        try:
            urls = [
                base.set(drivername="postgresql+psycopg", database=name).render_as_string(False)
                for name in names
            ]
            for url in urls:
                migrate.upgrade("engage", url)
            with psycopg.connect(admin, autocommit=True) as conn:
                shown = conn.execute("SHOW autovacuum").fetchone()
                autovacuum = shown is not None and shown[0] == "on"
            yield Store("postgresql", urls[0], urls[1], work, autovacuum)
        finally:
            with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
                for name in names:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def bootstrap(url: str) -> Bootstrapped:
    db = Database.connect(url)
    try:
        async with db.transaction() as conn:
            return await workspaces.bootstrap(conn, "Bench", "http://127.0.0.1")
    finally:
        await db.dispose()


class Analyzer(threading.Thread):
    """Where the PostgreSQL cluster runs without autovacuum (as the one of this workplace does,
    for CI), do its ANALYZE part: each second, tables changed by more than 50 rows + 10 % since
    their last analysis (autovacuum's default rule) are analysed. Without fresh statistics the
    planner scans a whole workspace for an external-id lookup and plans foreign-key checks as
    sequential scans: throughput then falls with table size, which no production database with
    autovacuum sees. Stopped with ``stop.set()``; ``runs`` counts the ANALYZE statements."""

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
        with self.store.raw_connect(self.url) as conn:
            while not self.stop.wait(1.0):
                for (table,) in conn.execute(self.RULE).fetchall():
                    conn.execute(f'ANALYZE "{table}"')
                    self.runs += 1


@contextlib.contextmanager
def autovacuum_stand_in(
    store: Store, url: str, counts: dict[str, int], role: str
) -> Iterator[None]:
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


def verify(store: Store, url: str, workspace_id: str, profiles: int, events: int) -> None:
    """The rows the requests should have left: profiles, raw events, event totals per profile
    and per day (each ``events`` in all)."""
    mark = "?" if store.dialect == "sqlite" else "%s"
    checks = {
        "profiles": (f"SELECT count(*) FROM profiles WHERE workspace_id = {mark}", profiles),
        "custom_events": (f"SELECT count(*) FROM custom_events WHERE workspace_id = {mark}", events),
        "profile_event_stats": ("SELECT sum(s.count) FROM profile_event_stats s JOIN profiles p "
                                f"ON p.id = s.profile_id WHERE p.workspace_id = {mark}", events),
        "profile_event_days": ("SELECT sum(s.count) FROM profile_event_days s JOIN profiles p "
                               f"ON p.id = s.profile_id WHERE p.workspace_id = {mark}", events),
    }  # fmt: skip
    conn = store.raw_connect(url)
    try:
        for table, (sql, expected) in checks.items():
            found = conn.execute(sql, (workspace_id,)).fetchone()[0]
            if int(found or 0) != expected:
                raise RuntimeError(f"{url}: {table} has {found}, expected {expected}")
    finally:
        conn.close()


# --- the raw engine ------------------------------------------------------------------------


class RawEngine:
    """The server's row writes for one request, by bare ``executemany`` on one connection."""

    def __init__(self, store: Store, workspace_id: str) -> None:
        self.sqlite = store.dialect == "sqlite"
        self.conn = store.raw_connect()
        self.cur = self.conn.cursor()
        self.ws = workspace_id
        self.sql = {name: self._dialect(text) for name, text in RAW_SQL.items()}

    def _dialect(self, text: str) -> str:
        if self.sqlite:
            return text
        return text.replace("?", "%s").replace("min(", "LEAST(").replace("max(", "GREATEST(")

    def close(self) -> None:
        self.conn.close()

    def _json(self, value: Any) -> Any:
        text = orjson.dumps(value).decode()
        return text if self.sqlite else Jsonb(value, dumps=lambda _v: text)

    def _time(self, value: dt.datetime) -> Any:
        if self.sqlite:  # SQLAlchemy's SQLite DATETIME storage: naive UTC text
            return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        return value

    def request(self, body: dict[str, Any]) -> None:
        if self.sqlite:
            self.cur.execute("BEGIN IMMEDIATE")
            self._write(body)
            self.cur.execute("COMMIT")
        else:
            with self.conn.transaction():
                self._write(body)

    def _ids(self, external_ids: list[str]) -> dict[str, int]:
        if self.sqlite:
            marks = ",".join("?" * len(external_ids))
            sql = f"SELECT external_id, id FROM profiles WHERE workspace_id = ? AND external_id IN ({marks})"
            return dict(self.cur.execute(sql, (self.ws, *external_ids)).fetchall())
        sql = (
            "SELECT external_id, id FROM profiles WHERE workspace_id = %s AND external_id = ANY(%s)"
        )
        return dict(self.cur.execute(sql, (self.ws, external_ids)).fetchall())

    def _write(self, body: dict[str, Any]) -> None:
        now = dt.datetime.now(dt.UTC)
        at_now = self._time(now)
        attrs, events = body["attributes"], body["events"]
        addressed = sorted({o["external_id"] for o in attrs} | {e["external_id"] for e in events})
        ids = self._ids(addressed)
        new = [a for a in attrs if a["external_id"] not in ids]
        if new:
            self.cur.executemany(self.sql["insert_profile"], [
                (self.ws, object_id(), a["external_id"], a["first_name"], self._json({}),
                 self._json({k: a[k] for k in ("plan", "score", "vip")}),
                 random.randrange(10000), at_now, at_now)
                for a in new
            ])  # fmt: skip
            ids.update(self._ids([a["external_id"] for a in new]))
        old = [a for a in attrs if a not in new]
        if old:
            self.cur.executemany(self.sql["update_profile"], [
                (a["first_name"], self._json({k: a[k] for k in ("plan", "score", "vip")}),
                 at_now, ids[a["external_id"]])
                for a in old
            ])  # fmt: skip
        rows = []
        for e in events:
            at = min(dt.datetime.fromisoformat(e["time"]), now)
            rows.append((ids[e["external_id"]], e["name"], self._time(at), at.date(), e["properties"]))  # fmt: skip
        self.cur.executemany(self.sql["insert_event"], [
            (self.ws, pid, name, at, self._json(props)) for pid, name, at, _day, props in rows
        ])  # fmt: skip
        self.cur.executemany(self.sql["event_stats"], [
            (pid, name, at, at) for pid, name, at, _day, _props in sorted(rows, key=_by_key)
        ])  # fmt: skip
        self.cur.executemany(self.sql["event_days"], [
            (pid, name, day if not self.sqlite else day.isoformat())
            for pid, name, _at, day, _props in sorted(rows, key=_by_key)
        ])  # fmt: skip
        points = 4 * len(attrs) + len(events)
        day = now.date() if not self.sqlite else now.date().isoformat()
        self.cur.execute(self.sql["datapoints"], (self.ws, day, points))


def _by_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return row[0], row[1], row[3]


RAW_SQL = {
    "insert_profile": (
        "INSERT INTO profiles (workspace_id, braze_id, external_id, first_name, standard, "
        "custom_attributes, random_bucket, total_revenue, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)"
    ),
    "update_profile": (
        "UPDATE profiles SET first_name = ?, custom_attributes = ?, updated_at = ? WHERE id = ?"
    ),
    "insert_event": (
        "INSERT INTO custom_events (workspace_id, profile_id, name, time, properties) "
        "VALUES (?, ?, ?, ?, ?)"
    ),
    "event_stats": (
        "INSERT INTO profile_event_stats (profile_id, name, count, first_at, last_at) "
        "VALUES (?, ?, 1, ?, ?) ON CONFLICT (profile_id, name) DO UPDATE SET "
        "count = profile_event_stats.count + 1, "
        "first_at = min(profile_event_stats.first_at, excluded.first_at), "
        "last_at = max(profile_event_stats.last_at, excluded.last_at)"
    ),
    "event_days": (
        "INSERT INTO profile_event_days (profile_id, name, day, count) VALUES (?, ?, ?, 1) "
        "ON CONFLICT (profile_id, name, day) DO UPDATE SET count = profile_event_days.count + 1"
    ),
    "datapoints": (
        "INSERT INTO datapoints (workspace_id, day, source, count) VALUES (?, ?, 'users_track', ?) "
        "ON CONFLICT (workspace_id, day, source) DO UPDATE SET count = datapoints.count + excluded.count"
    ),
}


def raw_engine(
    store: Store, workspace_id: str, payloads: dict[str, list[bytes]]
) -> dict[str, float]:
    """Seconds per phase for the raw engine writing the same requests' rows."""
    engine = RawEngine(store, workspace_id)
    timings = {}
    try:
        for phase, phase_payloads in payloads.items():
            decoded = [orjson.loads(p) for p in phase_payloads]
            started = time.perf_counter()
            for body in decoded:
                engine.request(body)
            timings[phase] = time.perf_counter() - started
    finally:
        engine.close()
    return timings


# --- the run ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _async(manager: contextlib.AbstractContextManager[None]) -> AsyncIterator[None]:
    with manager:
        yield


async def run(args: argparse.Namespace) -> dict[str, Any]:
    count = QUICK_PROFILES if args.quick else args.profiles
    payloads = {"create": bodies(count, "create"), "update": bodies(count, "update")}
    objects = {phase: objects_in(p) for phase, p in payloads.items()}
    with stores(args.db_url) as store:
        boot = await bootstrap(store.server_url)
        raw_boot = await bootstrap(store.raw_url)
        env = {"COHORTBRIDGE_RATE_USERS_TRACK": str(10**9)}
        server, base = start_engage(store.server_url, store.work, args.workers, env)
        phases: dict[str, PhaseResult] = {}
        spy = None
        analyzed: dict[str, int] = {}
        try:
            stand_in = autovacuum_stand_in(store, store.server_url, analyzed, "server")
            async with asyncio.timeout(args.timeout), _async(stand_in):
                await wait_up(base)
                process = psutil.Process(server.pid)
                sampler = RssSampler(server.pid)
                sampler.start()
                if args.py_spy:
                    spy = start_py_spy(server.pid, args.py_spy)
                    await asyncio.sleep(1)
                for phase, phase_payloads in payloads.items():
                    log(f"{phase}: {len(phase_payloads):,} requests, {objects[phase]:,} objects …")
                    phases[phase] = await send(
                        base, boot.rest_api_key, phase_payloads, args.concurrency, process
                    )
                    log(f"  {objects[phase] / phases[phase].seconds:,.0f} objects/s")
                sampler.stop.set()
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=60)
            server.terminate()
            server.wait(timeout=60)
        verify(store, store.server_url, boot.workspace_id, count, 2 * count)
        log("raw engine, same rows …")
        with autovacuum_stand_in(store, store.raw_url, analyzed, "raw"):
            raw = raw_engine(store, raw_boot.workspace_id, payloads)
        verify(store, store.raw_url, raw_boot.workspace_id, count, 2 * count)
        database = store.version()
        if store.dialect == "postgresql":
            database += (
                ", autovacuum on"
                if store.autovacuum
                else ", autovacuum off: its ANALYZE rule applied by the benchmark "
                f"({analyzed.get('server', 0)} runs for the server, {analyzed.get('raw', 0)} for raw)"
            )

    total = sum(objects.values())
    seconds = sum(p.seconds for p in phases.values())
    raw_seconds = sum(raw.values())
    latencies = [x for p in phases.values() for x in p.latencies]
    ours, raw_rate = total / seconds, total / raw_seconds
    return {
        "benchmark": "users_track",
        "profiles": count,
        "requests": sum(len(p) for p in payloads.values()),
        "objects": total,
        "seconds": round(seconds, 2),
        "objects_per_s": round(ours),
        "raw_objects_per_s": round(raw_rate),
        "ratio_to_raw": round(ours / raw_rate, 3),
        "phases": {
            phase: {
                "objects_per_s": round(objects[phase] / p.seconds),
                "seconds": round(p.seconds, 2),
                "raw_objects_per_s": round(objects[phase] / raw[phase]),
                "latency_ms_p50": round(1000 * percentile(p.latencies, 0.5), 1),
                "latency_ms_p99": round(1000 * percentile(p.latencies, 0.99), 1),
                "server_cpu_s": round(p.server_cpu_s, 1),
                "client_cpu_s": round(p.client_cpu_s, 1),
                "connections_per_server_process": p.connections,
            }
            for phase, p in phases.items()
        },
        "raw_seconds": round(raw_seconds, 2),
        "raw_engine": (
            "stdlib sqlite3, the server's PRAGMAs" if store.dialect == "sqlite" else "psycopg"
        )
        + ", one connection, bare executemany, one transaction per request",
        "latency_ms_p50": round(1000 * percentile(latencies, 0.5), 1),
        "latency_ms_p99": round(1000 * percentile(latencies, 0.99), 1),
        # Cores' worth of CPU while the requests ran: server processes, and this (client) one.
        "server_cpu_cores": round(sum(p.server_cpu_s for p in phases.values()) / seconds, 2),
        "client_cpu_cores": round(sum(p.client_cpu_s for p in phases.values()) / seconds, 2),
        "server_rss_peak_mb": round(sampler.peak / 2**20, 1),
        "concurrency": args.concurrency,
        "clients": f"{args.concurrency} keep-alive connections in one process (bench.common.LeanClient)",
        "workers": args.workers,
        "database": database,
        "profiled": bool(args.py_spy),
        "code": code_version(),
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
    parser.add_argument("--profiles", type=int, default=100_000, help="profiles (default 100000)")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent clients (4)")
    parser.add_argument(
        "--db-url",
        help="a loopback PostgreSQL server, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/"
        "postgres: two throwaway databases are created there and dropped (default: SQLite)",
    )
    parser.add_argument(
        "--workers", type=int, default=2,
        help="server worker processes (2, one per core of this machine, as one would deploy)",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_PROFILES:,} profiles")
    parser.add_argument("--timeout", type=float, default=1800, help="bound of the HTTP part, s")
    parser.add_argument(
        "--py-spy",
        metavar="FILE",
        help="record the server with py-spy (per thread, idle included) to FILE: collapsed "
        "stacks, or a flame graph for .svg, speedscope for .json; slows the server down",
    )
    args = parser.parse_args()
    if args.profiles < 1 or args.concurrency < 1:
        parser.error("--profiles and --concurrency must be positive")
    # Stopped by a timeout: unwind as on Ctrl-C, so the server stops and databases are dropped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    result = asyncio.run(run(args))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
