"""Benchmark: event streaming, analytics → engage (issue 8).

What it does, all on this machine (127.0.0.1 only), bounded in size and time:

1. Makes fresh, migrated databases: engage and analytics for the stream, and a second engage
   one for the direct comparison (SQLite files in a temporary directory by default; with
   ``--db-url`` throwaway ``cb_bench_<random>`` databases on that loopback PostgreSQL server,
   dropped at the end; ``bench/cohorts.databases``).
2. Seeds engage with a workspace (``workspaces.service.bootstrap``) and a REST API key named
   ``amplitude-stream`` with ``users.track`` only (the ledger counts the stream's writes under
   ``users_track:amplitude-stream``); analytics with a project, a Braze destination pointing at
   the engage server with that key and the workspace's app id, and one enabled stream taking
   every event, with the event properties ``screen``, ``source`` and ``duration_ms``, the user
   property ``plan``, identified by ``external_id`` = ``user_id``.
3. Starts ``cohortbridge serve engage`` and ``cohortbridge serve analytics`` (with
   ``COHORTBRIDGE_JOBS_IN_SERVER=false``: the server does not forward) as subprocesses, each
   with one worker and the default rate limits (engage: 3,000 ``/users/track`` requests per
   3 s, as Braze). The forwarder runs in this process, as ``cohortbridge worker`` runs it: a
   loop calling ``streams.service.forward(db, http, on_ack=…)``, sleeping 50 ms after a
   call that found nothing due. ``on_ack`` gives each acknowledged row's enqueue time (the
   moment analytics accepted the ``/batch`` request, after validation) and the moment engage's
   answer was settled: their difference is the latency of that event, ingestion → engage.
4. Sends the events of ``bench/ingest.py`` (requests of 2,000 SDK-shaped events: 500 users × a
   4-event session; every user first, then random known users) through ``POST /batch`` with
   ``--concurrency`` clients (``bench.ingest.send``, on a thread of its own with its own
   event loop, so that its CPU time is told apart from the forwarder's) while the forwarder
   runs; then waits until every event is acknowledged. With ``--paused`` the forwarder starts
   only once every event is ingested (the forwarder alone, draining a full outbox).
5. Checks: engage holds one ``custom_events`` row per event sent (duplicates = held − sent,
   must be 0), one profile per user, the ledger counted the events; the outbox is empty (no
   row dead or waiting).
6. For comparison, in the same run: engage alone. The same event objects (computed from the
   same requests by the stream's own functions: ``logic.event_object``, packed by
   ``logic.requests`` into 75-event requests) are posted straight to a second, fresh engage
   server's ``/users/track`` by ``--concurrency`` clients (one keep-alive connection
   each; any answer but 201 aborts).

Figures (one JSON object on stdout, progress on stderr): ingest events/s; forwarded events/s
= events / (first ``/batch`` request sent → last acknowledgement); latency p50/p95/max and per
5-second window of acknowledgements; the forwarder's rate after ingestion ended; requests to
engage and the wall time with one in flight; the analytics SQL of the forwarder by statement;
CPU seconds of each process (analytics server, engage server, the forwarder, the clients);
engage alone (events/s) and the ratio forwarded / direct. Targets (issue 8): ≥ 20,000
forwarded events/s, p95 ≤ 5 s.

Usage, from the repository root::

    .venv/bin/python -m bench.streaming [--users 20000] [--events 200000] [--quick]
    .venv/bin/python -m bench.streaming --paused      # the forwarder alone, on a full outbox
    .venv/bin/python -m bench.streaming --db-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python -m bench.streaming --py-spy /tmp/streaming   # profiles of all 3 processes
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil

from bench.cohort_sync import TimedTransport
from bench.cohorts import Autovacuum, Statements, Store, create_project, databases, top_statements
from bench.common import (
    code_version,
    cpu_model,
    cpu_seconds,
    facts,
    log,
    percentile,
    start_engage,
    start_py_spy,
    wait_up,
)
from bench.ingest import PER_REQUEST, USERS_PER_REQUEST, Mirror, Plan, bodies, start_analytics
from bench.ingest import send as send_batches
from cohortbridge.analytics.destinations import service as destinations
from cohortbridge.analytics.streams import logic
from cohortbridge.analytics.streams import service as streams
from cohortbridge.db.engine import Database
from cohortbridge.engage.datapoints.service import users_track_source
from cohortbridge.engage.workspaces import service as workspaces

QUICK_USERS, QUICK_EVENTS = 2_000, 20_000
TARGETS = {"events_per_s": 20_000, "latency_p95_s": 5.0}
KEY_NAME = "amplitude-stream"
STREAM_CONFIG = {
    "event_properties": ["screen", "source", "duration_ms"],
    "user_properties": ["plan"],
    "identifier": {"property": "user_id", "type": "external_id"},
}
IDLE_S = 0.05  # the forwarder's pause after a call that found nothing due
WINDOW_S = 5.0  # latency per window of acknowledgements


# --- seeding -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Engage:
    workspace_id: str
    app_id: str
    key: str  # the named users.track key


async def engage_setup(url: str) -> Engage:
    db = Database.connect(url)
    try:
        async with db.transaction() as conn:
            ws = await workspaces.bootstrap(conn, "Bench", "http://127.0.0.1")
            made = await workspaces.create_api_key(conn, ws.workspace_id, ["users.track"], KEY_NAME)
    finally:
        await db.dispose()
    return Engage(ws.workspace_id, ws.app_id, made.rest_api_key)


async def stream_setup(db: Database, project_id: int, base: str, engage: Engage) -> str:
    async with db.transaction() as conn:
        destination = await destinations.create_destination(
            conn, project_id, rest_endpoint=base, data_import_key=None, partner_api_key=None,
            rest_api_key=engage.key, app_id=engage.app_id,
        )  # fmt: skip
        made = await streams.create_stream(
            conn, destination_id=destination["destination_id"], name="Bench", config=STREAM_CONFIG
        )
    return str(made["stream_id"])


@contextlib.contextmanager
def server(process: subprocess.Popen[bytes]) -> Iterator[psutil.Process]:
    try:
        yield psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=60)


# --- the forwarder -----------------------------------------------------------------------------


@dataclass
class Forwarder:
    """``streams.forward`` in a loop, as ``cohortbridge worker`` runs it; what was acknowledged."""

    db: Database
    http: httpx.AsyncClient
    latencies: list[float] = field(default_factory=list)
    acks: list[tuple[float, int]] = field(default_factory=list)  # (perf_counter, rows)
    calls: int = 0
    idle_calls: int = 0
    busy_s: float = 0.0  # wall time inside forward()
    totals: streams.Forwarded = field(default_factory=streams.Forwarded)

    @property
    def acked(self) -> int:
        return sum(rows for _, rows in self.acks)

    def on_ack(self, enqueued: list[dt.datetime], acked_at: dt.datetime) -> None:
        self.latencies.extend((acked_at - e).total_seconds() for e in enqueued)
        self.acks.append((time.perf_counter(), len(enqueued)))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            done = await streams.forward(self.db, self.http, on_ack=self.on_ack)
            self.busy_s += time.perf_counter() - started
            self.calls += 1
            self.totals.add(done)
            if not (done.forwarded or done.rejected or done.failed or done.dead):
                self.idle_calls += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), IDLE_S)


def windows(forwarder: Forwarder, start: float) -> list[dict[str, Any]]:
    """Acknowledgements per ``WINDOW_S`` seconds since ``start``: count and latency."""
    out: dict[int, list[float]] = {}
    position = 0
    for at, rows in forwarder.acks:
        out.setdefault(int((at - start) // WINDOW_S), []).extend(
            forwarder.latencies[position : position + rows]
        )
        position += rows
    return [
        {"from_s": index * WINDOW_S, "acked": len(values),
         "latency_s_p50": round(percentile(values, 0.5), 2),
         "latency_s_p95": round(percentile(values, 0.95), 2)}
        for index, values in sorted(out.items())
    ]  # fmt: skip


# --- ingestion, on its own thread --------------------------------------------------------------


@dataclass
class Ingested:
    started: float  # perf_counter of the first request
    ended: float
    latencies: list[float]
    cpu_s: float  # the clients' thread


def ingest_on_thread(base: str, payloads: list[bytes], concurrency: int, pid: int) -> Ingested:
    cpu = time.thread_time()
    result = asyncio.run(send_batches(base, payloads, concurrency, psutil.Process(pid)))
    ended = time.perf_counter()
    return Ingested(ended - result.seconds, ended, result.latencies, time.thread_time() - cpu)


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Processes:
    analytics: psutil.Process
    engage: psutil.Process

    def cpu(self) -> dict[str, float]:
        return {"analytics_server": cpu_seconds(self.analytics),
                "engage_server": cpu_seconds(self.engage),
                "bench_process": time.process_time()}  # fmt: skip


@contextlib.contextmanager
def profiling(target: str | None, pids: dict[str, int]) -> Iterator[None]:
    if not target:
        yield
        return
    spies = [start_py_spy(pid, f"{target}-{name}.txt") for name, pid in pids.items()]
    time.sleep(1)
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            spy.wait(timeout=120)


@dataclass
class Live:
    ingested: Ingested
    forwarder: Forwarder
    last_ack: float
    acked_at_ingest_end: int
    cpu: dict[str, float]
    transport: dict[str, Any]
    sql: list[tuple[str, float]]


async def stream_phase(
    args: argparse.Namespace, db: Database, statements: Statements, base: str,
    payloads: list[bytes], procs: Processes, events: int,
) -> Live:  # fmt: skip
    transport = TimedTransport()
    stop = asyncio.Event()
    async with httpx.AsyncClient(transport=transport, timeout=30) as http:
        forwarder = Forwarder(db, http)
        with statements.recording() as sql:
            before = procs.cpu()
            task = None if args.paused else asyncio.create_task(forwarder.run(stop))
            ingesting = asyncio.create_task(asyncio.to_thread(
                ingest_on_thread, base, payloads, args.concurrency, procs.analytics.pid))  # fmt: skip
            while not ingesting.done():
                await asyncio.wait({ingesting}, timeout=5)
                log(f"  acknowledged {forwarder.acked:,} of {events:,}")
            ingested = ingesting.result()
            at_end = forwarder.acked
            log(f"ingested {events:,} in {ingested.ended - ingested.started:.1f} s; "
                f"{at_end:,} acknowledged by then")  # fmt: skip
            if task is None:
                task = asyncio.create_task(forwarder.run(stop))
            deadline = time.perf_counter() + args.drain_timeout
            while forwarder.acked < events and time.perf_counter() < deadline:
                if task.done():
                    task.result()  # a failure of the forwarder: raise it
                await asyncio.sleep(0.2)
            stop.set()
            await task
            after = procs.cpu()
    if forwarder.acked < events:
        raise RuntimeError(f"only {forwarder.acked} of {events} acknowledged in time")
    cpu = {name: after[name] - before[name] for name in after}
    cpu["ingest_clients_thread"] = ingested.cpu_s
    cpu["forwarder"] = cpu.pop("bench_process") - ingested.cpu_s
    return Live(ingested, forwarder, forwarder.acks[-1][0], at_end, cpu, transport.summary(),
                list(sql))  # fmt: skip


def direct_bodies(payloads: list[bytes], stream: logic.Stream) -> list[bytes]:
    """The stream's event objects for the same requests, 75 per ``/users/track`` request."""
    mirror = Mirror()
    objects: list[tuple[int, str, dict[str, Any]]] = []
    for payload in payloads:
        for uid, kind, moment, *_rest, props, stamped, _data in mirror.request(
            orjson.loads(payload)
        ).events:
            body = logic.event_object(stream, user_id=uid, event_type=kind, time=moment,
                                      event_props=props, user_props=stamped)  # fmt: skip
            if body is not None:
                objects.append((len(objects), "events", body))
    return [orjson.dumps(r.body) for r in logic.requests(objects)]


@dataclass
class Posted:
    seconds: float
    latencies: list[float]
    engage_cpu_s: float


async def post_track(
    base: str, key: str, bodies_: list[bytes], concurrency: int, engage: psutil.Process
) -> Posted:
    """Each body once to ``/users/track``, ``concurrency`` in flight; any answer but 201 aborts."""
    pending = iter(bodies_)
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    async def worker(http: httpx.AsyncClient) -> None:
        for body in pending:  # one shared iterator: each body goes to one worker
            began = time.perf_counter()
            answer = await http.post("/users/track", content=body, headers=headers)
            latencies.append(time.perf_counter() - began)
            if answer.status_code != 201:
                raise RuntimeError(f"/users/track: {answer.status_code} {answer.text[:300]}")

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with contextlib.AsyncExitStack() as stack:
        https = [await stack.enter_async_context(
            httpx.AsyncClient(base_url=base, timeout=120, limits=limits))
            for _ in range(concurrency)]  # fmt: skip
        await asyncio.gather(*(http.get("/healthz") for http in https))  # connected first
        cpu, started = cpu_seconds(engage), time.perf_counter()
        await asyncio.gather(*(worker(http) for http in https))
        return Posted(time.perf_counter() - started, latencies, cpu_seconds(engage) - cpu)


async def direct_phase(store: Store, work: Path, payloads: list[bytes], concurrency: int,
                       stream_id: str, events: int) -> dict[str, Any]:  # fmt: skip
    """engage alone: the same event objects posted straight to a fresh engage server."""
    engage = await engage_setup(store.url)
    stream = logic.stream_of(stream_id, engage.app_id, logic.parse_config(STREAM_CONFIG))
    tracked = direct_bodies(payloads, stream)
    log(f"engage alone: {len(tracked):,} /users/track requests of up to 75 events …")
    process, base = start_engage(store.url, work, 1, {})
    with server(process) as proc:
        await wait_up(base)
        result = await post_track(base, engage.key, tracked, concurrency, proc)
    held = count(store, "SELECT count(*) FROM custom_events WHERE workspace_id = ?",
                 engage.workspace_id)  # fmt: skip
    if held != events:
        raise RuntimeError(f"engage alone holds {held} events, {events} sent")
    log(f"  {events / result.seconds:,.0f} events/s")
    return {
        "requests": len(tracked),
        "seconds": round(result.seconds, 2),
        "events_per_s": round(events / result.seconds),
        "request_ms_p50": round(1000 * percentile(result.latencies, 0.5), 1),
        "request_ms_p99": round(1000 * percentile(result.latencies, 0.99), 1),
        "engage_cpu_s": round(result.engage_cpu_s, 1),
        "engage_cpu_ms_per_request": round(1000 * result.engage_cpu_s / len(tracked), 2),
        "engage_held": held,
    }


def count(store: Store, sql: str, *params: Any) -> int:
    return int(store.query(sql, params)[0][0] or 0)


def verify(engage: Store, analytics: Store, ws: Engage, events: int, users: int) -> dict[str, int]:
    found = {
        "engage_custom_events": count(
            engage, "SELECT count(*) FROM custom_events WHERE workspace_id = ?", ws.workspace_id
        ),
        "engage_profiles": count(
            engage, "SELECT count(*) FROM profiles WHERE workspace_id = ?", ws.workspace_id
        ),
        "engage_ledger_stream_datapoints": count(
            engage,
            "SELECT sum(count) FROM datapoints WHERE workspace_id = ? AND source = ?",
            ws.workspace_id,
            users_track_source(KEY_NAME),
        ),
        "outbox_rows_left": count(analytics, "SELECT count(*) FROM stream_outbox"),
        "stream_stats_forwarded": count(analytics, "SELECT sum(forwarded) FROM stream_stats"),
        "stream_stats_requests": count(analytics, "SELECT sum(requests) FROM stream_stats"),
    }
    found["duplicates"] = found["engage_custom_events"] - events
    if found["engage_custom_events"] != events or found["outbox_rows_left"]:
        raise RuntimeError(f"after the stream: {found}, {events} events sent")
    if found["engage_profiles"] != users:
        raise RuntimeError(f"engage holds {found['engage_profiles']} profiles, {users} users")
    return found


def sql_groups(sql: list[tuple[str, float]]) -> dict[str, float]:
    """The forwarder's analytics-side SQL, by step of a round."""
    groups = {"find_streams": 0.0, "claim": 0.0, "settle": 0.0, "other": 0.0}
    for text, seconds in sql:
        if text.startswith("SELECT event_streams.id"):
            key = "find_streams"
        elif text.startswith(("SELECT stream_outbox.", "UPDATE stream_outbox SET leased_until")):
            key = "claim"
        elif text.startswith(("DELETE FROM stream_outbox", "INSERT INTO stream_stats")):
            key = "settle"
        else:
            key = "other"
        groups[key] += seconds
    return {key: round(value, 2) for key, value in groups.items()}


# --- the run -----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def forwarder_db(url: str) -> AsyncIterator[tuple[Database, Statements]]:
    db = Database.connect(url)
    statements = Statements()
    statements.attach(db)
    try:
        yield db, statements
    finally:
        await db.dispose()


async def measure(
    args: argparse.Namespace, work: Path, stores: dict[str, Store], plan: Plan
) -> dict[str, Any]:
    engage_store, analytics_store = stores["engage"], stores["analytics"]
    ws = await engage_setup(engage_store.url)
    project = await create_project(analytics_store.url)
    log(f"{plan.users:,} users, building {sum(plan.requests.values()):,} /batch requests …")
    phases = bodies(plan, str(project["api_key"]), int(time.time() * 1000))
    payloads = [*phases["first_sight"], *phases["steady"]]
    events = len(payloads) * PER_REQUEST
    engage_process, engage_base = start_engage(engage_store.url, work, 1, {})
    with server(engage_process) as engage_proc:
        analytics_process, analytics_base = start_analytics(
            analytics_store.url, work, 1, {"COHORTBRIDGE_JOBS_IN_SERVER": "false"}
        )
        with server(analytics_process) as analytics_proc:
            await wait_up(engage_base)
            await wait_up(analytics_base)
            async with forwarder_db(analytics_store.url) as (db, statements):
                stream_id = await stream_setup(db, int(project["project_id"]), engage_base, ws)
                pids = {"analytics": analytics_proc.pid, "engage": engage_proc.pid,
                        "bench": os.getpid()}  # fmt: skip
                log(f"streaming {events:,} events" + (" (forwarder paused)" if args.paused else ""))
                with profiling(args.py_spy, pids):
                    live = await stream_phase(args, db, statements, analytics_base, payloads,
                                              Processes(analytics_proc, engage_proc), events)  # fmt: skip
    stored = verify(engage_store, analytics_store, ws, events, plan.users)
    with databases(args.db_url, ["engage"]) as (direct_work, direct_stores):
        direct = await direct_phase(direct_stores["engage"], direct_work, payloads,
                                    args.concurrency, stream_id, events)  # fmt: skip
    return report(args, plan, events, live, stored, direct)


def report(
    args: argparse.Namespace, plan: Plan, events: int, live: Live, stored: dict[str, int],
    direct: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    ing, fwd = live.ingested, live.forwarder
    ingest_s = ing.ended - ing.started
    total_s = live.last_ack - ing.started
    tail_s = live.last_ack - ing.ended
    rate = events / total_s
    p95 = percentile(fwd.latencies, 0.95)
    return {
        "benchmark": "streaming",
        "users": plan.users,
        "events": events,
        "batch_requests": len(ing.latencies),
        "forwarder_paused_during_ingest": args.paused,
        "ingest_seconds": round(ingest_s, 2),
        "ingest_events_per_s": round(events / ingest_s),
        "ingest_request_ms_p50": round(1000 * percentile(ing.latencies, 0.5), 1),
        "ingest_request_ms_p99": round(1000 * percentile(ing.latencies, 0.99), 1),
        "seconds_first_ingest_to_last_ack": round(total_s, 2),
        "forwarded_events_per_s": round(rate),
        "latency_s_p50": round(percentile(fwd.latencies, 0.5), 3),
        "latency_s_p95": round(p95, 3),
        "latency_s_max": round(max(fwd.latencies), 3),
        "latency_from": "outbox enqueue time (analytics accepted the /batch request, after "
        "validation) to the settling of engage's answer in the forwarder",
        "acked_when_ingest_ended": live.acked_at_ingest_end,
        "backlog_when_ingest_ended": events - live.acked_at_ingest_end,
        "drain_after_ingest_s": round(tail_s, 2),
        "drain_after_ingest_events_per_s": round((events - live.acked_at_ingest_end) / tail_s)
        if tail_s > 0.5
        else None,
        "targets": TARGETS,
        "targets_met": {
            "events_per_s": rate >= TARGETS["events_per_s"],
            "latency_p95_s": p95 <= TARGETS["latency_p95_s"],
        },
        "latency_by_window": windows(fwd, ing.started),
        "forwarder": {
            "calls": fwd.calls,
            "idle_calls": fwd.idle_calls,
            "wall_s_in_forward": round(fwd.busy_s, 2),
            "rounds_acked": len(fwd.acks),
            "forwarded": fwd.totals.forwarded,
            "rejected": fwd.totals.rejected,
            "failed": fwd.totals.failed,
            "dead": fwd.totals.dead,
            "requests_to_engage": fwd.totals.requests,
            "events_per_request": round(fwd.totals.forwarded / max(1, fwd.totals.requests), 1),
            "http_to_engage": live.transport,
            "analytics_sql_s": sql_groups(live.sql),
            "analytics_sql_top": top_statements(live.sql, 6),
        },
        "cpu_s": {name: round(value, 1) for name, value in live.cpu.items()},
        "cpu_cores": {name: round(value / total_s, 2) for name, value in live.cpu.items()},
        "stored": stored,
        "engage_alone": direct,
        "ratio_forwarded_to_engage_alone": round(rate / direct["events_per_s"], 3),
        "stream": STREAM_CONFIG,
        "concurrency": args.concurrency,
        "servers": "cohortbridge serve engage and serve analytics, 1 worker each, default rate "
        "limits; the forwarder and the /batch clients in this process (clients on a thread)",
        "code": args.code,
        "profiled": bool(args.py_spy),
        **facts(),
        "cpu": cpu_model(),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    plan = Plan(QUICK_USERS, QUICK_EVENTS) if args.quick else Plan(args.users, args.events)
    load_start = os.getloadavg()
    async with asyncio.timeout(args.timeout):
        with databases(args.db_url, ["engage", "analytics"]) as (work, stores):
            with Autovacuum(list(stores.values()), 30.0):
                result = await measure(args, work, stores, plan)
            result["database"] = (f"engage: {stores['engage'].version()}; analytics: "
                                  f"{stores['analytics'].version()}")  # fmt: skip
    result["load_avg_start"] = [round(x, 2) for x in load_start]
    result["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((__doc__ or "").splitlines()[1:]),
    )
    parser.add_argument("--users", type=int, default=20_000, help="distinct users (20000)")
    parser.add_argument("--events", type=int, default=200_000,
                        help="events in all (200000), at least 4 × --users")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent clients (4)")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_USERS:,} users, {QUICK_EVENTS:,} events")  # fmt: skip
    parser.add_argument("--paused", action="store_true",
                        help="start the forwarder only once every event is ingested")  # fmt: skip
    parser.add_argument("--db-url", help="a loopback PostgreSQL server, e.g. "
                        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres: throwaway "
                        "databases are created there and dropped (default: SQLite)")  # fmt: skip
    parser.add_argument("--drain-timeout", type=float, default=600,
                        help="how long to wait for the last acknowledgement after ingestion, s")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=1800, help="bound of the whole run, s")
    parser.add_argument("--py-spy", metavar="PREFIX",
                        help="record the analytics server, engage server and this process "
                        "with py-spy to PREFIX-<name>.txt (collapsed stacks); slows them down")  # fmt: skip
    args = parser.parse_args()
    if args.users < 1 or args.users % USERS_PER_REQUEST or args.concurrency < 1:
        parser.error(f"--users must be a multiple of {USERS_PER_REQUEST}, --concurrency positive")
    if args.events < 4 * args.users:
        parser.error("--events must be at least 4 × --users (every user's first session)")
    args.code = code_version()  # at the start: the servers import the code as it is now
    # Stopped by a timeout: unwind as on Ctrl-C, so the servers stop and databases are dropped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    result = asyncio.run(run(args))
    if code_version() != args.code:  # someone changed src/ meanwhile: say so
        result["code_at_end"] = code_version()
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
