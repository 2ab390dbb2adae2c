"""Benchmark: a 1,000,000-member cohort's real-time sync from analytics to engage (issue 7).

What it does, all on this machine (127.0.0.1 only):

1. Makes two fresh, migrated databases, engage and analytics (SQLite files in a temporary
   directory by default; with ``--db-url`` two throwaway ``cb_bench_<random>`` databases on
   that loopback PostgreSQL server, dropped at the end).
2. Seeds them directly with the raw engine (stdlib ``sqlite3`` ``executemany`` or psycopg
   ``COPY``; not measured), rows shaped as the applications write them:

   * engage: one workspace (``workspaces.service.bootstrap``), the partner ``amplitude`` with a
     partner key and a data import key (``engage.partners.service``), and N + N/100 profiles
     with external ids ``user-1`` … (as ``POST /users/track`` creates them);
   * analytics: one project and the same N + N/100 users (``user-<i>``, one device each), user
     property ``tier`` "gold" for the first N, "silver" for the others.

   Then, in this process, a behavioral cohort "user property ``gp:tier`` is gold" is created
   (``cohorts.service.prepare`` + ``create``) and computed once (``cohorts.service.compute``:
   N members; timed, reported apart), a Braze destination pointing at engage and a real-time
   sync by ``user_id`` (``destinations.service.create_destination`` / ``create_sync``).
3. Starts ``python -m cohortbridge.cli serve engage`` as a separate process, and times the first
   sync: ``destinations.service.run_sync`` in this process with an httpx client, until it
   returns, then a count of the cohort's members in engage's database (must be N). Every SQL
   statement of the analytics side and every HTTP request to engage are timed (where the
   time goes).
4. A segment ``{"amplitude_cohorts": {"comparison": "includes_value", "value": <cohort id>}}`` is
   created in engage (``POST /segments/create``); its size over ``GET /segments/size`` must be N.
5. Churn of 1 %: N/100 members leave (their ``tier`` becomes "silver") and the N/100 other users
   enter ("gold"), written to ``users.user_properties`` directly as identify calls would leave
   them (not timed). Then the tick, timed from its start: the cohort's recomputation, the sync
   run, and ``GET /segments/size`` polled until it shows N again; engage's membership is then
   compared id by id with the expected set.

Targets (issue 7): first sync ≤ 30 s, churn (tick to segment) ≤ 5 s. Prints one JSON object on
stdout, progress on stderr. Usage, from the repository root::

    .venv/bin/python -m bench.cohort_sync [--members 1000000] [--quick]
    .venv/bin/python -m bench.cohort_sync --db-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.cohorts import (
    DEVICE_COLUMNS,
    USER_COLUMNS,
    Autovacuum,
    Statements,
    Store,
    create_project,
    databases,
    stamp,
    top_statements,
    vacuum_analyze,
)
from bench.common import facts, log, start_engage, wait_up
from cohortbridge.analytics.cohorts import service as cohorts
from cohortbridge.analytics.destinations import service as destinations
from cohortbridge.db.engine import Database
from cohortbridge.engage.partners import service as partners
from cohortbridge.engage.workspaces import service as workspaces
from cohortbridge.kit.ids import object_id

QUICK_MEMBERS = 20_000
CHUNK = 50_000
TARGETS = {"first_sync_s": 30.0, "churn_s": 5.0}
DEFINITION = {"andClauses": [{"orClauses": [
    {"type": "user_property", "prop": "gp:tier", "op": "is", "values": ["gold"]}]}]}  # fmt: skip
PROFILE_COLUMNS = ("id", "workspace_id", "braze_id", "external_id", "standard",
                   "custom_attributes", "random_bucket", "total_revenue", "created_at",
                   "updated_at")  # fmt: skip


def _props(tier: str) -> str:
    return orjson.dumps({"plan": "pro", "tier": tier}).decode()


# --- seeding -----------------------------------------------------------------------------------


async def engage_setup(url: str) -> dict[str, str]:
    db = Database.connect(url)
    try:
        async with db.transaction() as conn:
            ws = await workspaces.bootstrap(conn, "Bench", "http://127.0.0.1")
            partner = await partners.create_partner_key(conn, "amplitude")
            secret = await partners.create_import_key(conn, ws.workspace_id, "amplitude", "x")
    finally:
        await db.dispose()
    return {"workspace_id": ws.workspace_id, "rest_api_key": ws.rest_api_key,
            "partner_api_key": partner.partner_api_key,
            "client_secret": secret.data_import_key}  # fmt: skip


def seed_engage(store: Store, workspace_id: str, total: int, now_s: int) -> None:
    """Identified profiles ``user-1`` … ``user-<total>`` (ids 1 … total)."""
    moment = stamp(now_s - 86_400, store.stamp_suffix())
    conn = store.raw()
    try:
        for start in range(1, total + 1, CHUNK):
            rows = [(i, workspace_id, object_id(), f"user-{i}", "{}", "{}", i % 10_000, 0.0,
                     moment, moment) for i in range(start, min(start + CHUNK, total + 1))]  # fmt: skip
            store.write(conn, "profiles", PROFILE_COLUMNS, rows)
            conn.commit()
        if store.dialect == "postgresql":
            conn.execute("SELECT setval(pg_get_serial_sequence('profiles', 'id'), %s)", (total,))
            conn.commit()
    finally:
        conn.close()
    vacuum_analyze(store, ("profiles",))


def seed_analytics(store: Store, project_id: int, members: int, total: int, now_s: int) -> None:
    """Users 1 … total, gold up to ``members``, silver after; one device each."""
    suffix = store.stamp_suffix()
    seen, created = stamp(now_s - 3600, suffix), stamp(now_s - 30 * 86_400, suffix)
    device = orjson.dumps({"platform": "iOS", "country": "DE"}).decode()
    gold, silver = _props("gold"), _props("silver")
    conn = store.raw()
    try:
        for start in range(1, total + 1, CHUNK):
            ids = range(start, min(start + CHUNK, total + 1))
            users = [(a, project_id, f"user-{a}", gold if a <= members else silver, device,
                      created, seen, seen, created, seen) for a in ids]  # fmt: skip
            store.write(conn, "users", USER_COLUMNS, users)
            store.write(conn, "devices", DEVICE_COLUMNS,
                        [(project_id, f"dev-{a}", a, seen) for a in ids])  # fmt: skip
            conn.commit()
        if store.dialect == "postgresql":
            conn.execute("SELECT setval(pg_get_serial_sequence('users', 'amplitude_id'), %s)",
                         (total,))  # fmt: skip
            conn.commit()
    finally:
        conn.close()
    vacuum_analyze(store, ("users", "devices"))


def churn(store: Store, leaving: list[int], entering: list[int]) -> None:
    """The users' new properties, as the identify calls that changed them leave them."""
    suffix = store.stamp_suffix()
    moment = stamp(int(time.time()), suffix)
    mark = "?" if store.dialect == "sqlite" else "%s"
    sql = (f"UPDATE users SET user_properties = {mark}, updated_at = {mark} "
           f"WHERE amplitude_id = {mark}")  # fmt: skip
    conn = store.raw()
    try:
        cursor = conn.cursor()
        cursor.executemany(sql, [(_props("silver"), moment, a) for a in leaving])
        cursor.executemany(sql, [(_props("gold"), moment, a) for a in entering])
        conn.commit()
    finally:
        conn.close()


def engage_members(store: Store, workspace_id: str, cohort_id: str) -> list[str]:
    return [row[0] for row in store.query(
        "SELECT p.external_id FROM cohort_members m JOIN cohorts c ON c.id = m.cohort "
        "JOIN profiles p ON p.id = m.profile_id WHERE c.workspace_id = ? AND c.cohort_id = ?",
        (workspace_id, cohort_id),
    )]  # fmt: skip


# --- timing ------------------------------------------------------------------------------------


@dataclass
class TimedTransport(httpx.AsyncBaseTransport):
    """The HTTP requests to engage: each one's interval, to tell engage's time from ours."""

    inner: httpx.AsyncHTTPTransport = field(default_factory=httpx.AsyncHTTPTransport)
    intervals: list[tuple[float, float]] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.intervals.append((started, time.perf_counter()))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()

    def summary(self) -> dict[str, Any]:
        """Requests, their summed time, and the wall time with at least one in flight."""
        spans = sorted(self.intervals)
        busy, end = 0.0, float("-inf")
        for start, stop in spans:
            if stop > end:
                busy += stop - max(start, end)
                end = stop
        each = sorted(stop - start for start, stop in spans)
        return {
            "requests": len(spans),
            "request_seconds_sum": round(sum(each), 3),
            "wall_seconds_with_a_request_in_flight": round(busy, 3),
            "request_median_ms": round(1000 * each[len(each) // 2], 1) if each else None,
        }


def statement_groups(log_: list[tuple[str, float]]) -> dict[str, float]:
    """Analytics-side SQL time of a sync run, by step."""
    groups = {"plan": 0.0, "read_pending": 0.0, "acknowledge": 0.0, "other": 0.0}
    for sql, seconds in log_:
        plan_delete = sql == "DELETE FROM sync_pending WHERE sync_pending.sync = ?"
        if "cb_sync_desired" in sql or plan_delete or sql.startswith("INSERT INTO sync_pending"):
            key = "plan"
        elif sql.startswith("SELECT sync_pending."):
            key = "read_pending"
        elif "sync_state" in sql or "sync_pending" in sql or "sync_run_users" in sql:
            key = "acknowledge"
        else:
            key = "other"
        groups[key] += seconds
    return {key: round(value, 3) for key, value in groups.items()}


async def timed_sync(
    db: Database, statements: Statements, sync_id: str
) -> tuple[destinations.RunResult, float, dict[str, Any]]:
    transport = TimedTransport()
    marks: list[float] = []
    async with httpx.AsyncClient(transport=transport, timeout=120) as http:
        with statements.recording() as log_:
            started = time.perf_counter()
            result = await destinations.run_sync(
                db, sync_id, http, progress=lambda done, total: marks.append(time.perf_counter())
            )
            seconds = time.perf_counter() - started
    if result is None or result.status != "succeeded":
        raise RuntimeError(f"sync run: {result}")
    first_batch = marks[0] - started if marks else None
    return (
        result,
        seconds,
        {
            "until_first_round_acknowledged_s": None
            if first_batch is None
            else round(first_batch, 3),
            "analytics_sql_s": statement_groups(log_),
            "analytics_sql_top": top_statements(log_, 5),
            "http_to_engage": transport.summary(),
        },
    )


async def segment_size(http: httpx.AsyncClient, segment_id: str) -> int:
    response = await http.get("/segments/size", params={"segment_id": segment_id})
    if response.status_code != 200:
        raise RuntimeError(f"size: {response.status_code} {response.text[:300]}")
    return int(response.json()["size"])


@contextlib.asynccontextmanager
async def engage_server(store: Store, work: Path) -> AsyncIterator[str]:
    env = {"COHORTBRIDGE_RATE_COHORT_IMPORT": str(10**9), "COHORTBRIDGE_RATE_DEFAULT": str(10**9)}
    process, base = start_engage(store.url, work, 1, env)
    try:
        await wait_up(base)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=60)


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Sides:
    engage: Store
    analytics: Store
    keys: dict[str, str]
    project_id: int
    members: int
    moved: int
    db: Database
    statements: Statements


async def prepare_sync(sides: Sides, base: str) -> tuple[str, str, float]:
    """The cohort (computed once), the destination and the real-time sync: (cohort id, sync
    id, seconds of the first computation)."""
    db, project_id = sides.db, sides.project_id
    started = time.perf_counter()
    async with db.write_turn(), db.transaction() as conn:
        draft = cohorts.prepare({"name": "Gold", "definition": DEFINITION}, creating=True)
        cohort_id = (await cohorts.create(conn, project_id, draft))["cohortId"]
        row = await cohorts.found(conn, project_id, cohort_id)
        computed = await cohorts.compute(conn, row)
    compute_s = time.perf_counter() - started
    if computed.size != sides.members:
        raise RuntimeError(f"cohort: {computed.size} members, expected {sides.members}")
    async with db.transaction() as conn:
        destination = await destinations.create_destination(
            conn, project_id, rest_endpoint=base, data_import_key=sides.keys["client_secret"],
            partner_api_key=sides.keys["partner_api_key"],
        )  # fmt: skip
        created = await destinations.create_sync(
            conn, cohort_id=cohort_id, destination_id=destination["destination_id"],
            cadence="realtime", identifiers=["user_id"],
        )  # fmt: skip
    return cohort_id, str(created["sync_id"]), compute_s


async def first_sync(sides: Sides, cohort_id: str, sync_id: str) -> dict[str, Any]:
    log(f"first sync of {sides.members:,} members …")
    result, seconds, steps = await timed_sync(sides.db, sides.statements, sync_id)
    # run_sync returns once engage acknowledged every batch; the count confirms it holds them.
    held = len(engage_members(sides.engage, sides.keys["workspace_id"], cohort_id))
    log(f"  {seconds:.1f} s; engage holds {held:,}")
    if held != sides.members or result.added != sides.members:
        raise RuntimeError(f"first sync: engage holds {held}, added {result.added}")
    return {
        "seconds": round(seconds, 3),
        "ids_per_s": round(sides.members / seconds),
        "added": result.added,
        "engage_holds": held,
        "target_s": TARGETS["first_sync_s"],
        "meets_target": seconds <= TARGETS["first_sync_s"],
        "steps": steps,
    }


DELTA_PLAN = (
    "SELECT ch.amplitude_id, ch.change, u.user_id FROM cohort_changes ch LEFT JOIN users u "
    "ON u.amplitude_id = ch.amplitude_id WHERE ch.cohort = {m} AND ch.version = {m}"
)


async def plan_from_changes(db: Database, cohort_pk: int, version: int) -> tuple[float, int]:
    async with db.read() as conn:
        mark = "?" if conn.dialect.name == "sqlite" else "%s"
        started = time.perf_counter()
        rows = (await conn.exec_driver_sql(DELTA_PLAN.format(m=mark), (cohort_pk, version))).all()
        return time.perf_counter() - started, len(rows)


async def churn_tick(
    sides: Sides, http: httpx.AsyncClient, cohort_id: str, sync_id: str, segment_id: str
) -> tuple[dict[str, Any], list[int]]:
    """1 % leave, 1 % enter; the tick timed from the recomputation to the segment's size."""
    members, moved = sides.members, sides.moved
    leaving = sorted(random.Random(7).sample(range(1, members + 1), moved))
    churn(sides.analytics, leaving, list(range(members + 1, members + moved + 1)))
    log(f"churn: {moved:,} leave, {moved:,} enter; the tick …")
    started = time.perf_counter()
    with sides.statements.recording() as compute_log:
        async with sides.db.write_turn(), sides.db.transaction() as conn:
            row = await cohorts.found(conn, sides.project_id, cohort_id)
            recomputed = await cohorts.compute(conn, row)
    recompute_s = time.perf_counter() - started
    compute_statements = top_statements(list(compute_log), 4)
    if (recomputed.entered, recomputed.left) != (moved, moved):
        raise RuntimeError(f"recompute: {recomputed}")
    result, sync_s, steps = await timed_sync(sides.db, sides.statements, sync_id)
    polls, poll_started = 0, time.perf_counter()
    while True:
        polls += 1
        size = await segment_size(http, segment_id)
        if size == members or time.perf_counter() - poll_started > 60:
            break
    seconds = time.perf_counter() - started
    segment_s = time.perf_counter() - poll_started
    delta_s, delta_rows = await plan_from_changes(sides.db, row["pk"], recomputed.version)
    log(f"  compute {recompute_s:.2f} s, sync {sync_s:.2f} s, segment {segment_s:.2f} s: "
        f"{seconds:.2f} s")  # fmt: skip
    if size != members or (result.added, result.removed) != (moved, moved):
        raise RuntimeError(f"after the churn: segment size {size}, sync {result}")
    return {
        "left": moved,
        "entered": moved,
        "seconds": round(seconds, 3),
        "recompute_s": round(recompute_s, 3),
        "recompute_statements": compute_statements,
        "sync_s": round(sync_s, 3),
        "sync_added": result.added,
        "sync_removed": result.removed,
        "segment_s": round(segment_s, 3),
        "segment_polls": polls,
        "target_s": TARGETS["churn_s"],
        "meets_target": seconds <= TARGETS["churn_s"],
        "sync_steps": steps,
        "alternative_plan_from_cohort_changes": {
            "seconds": round(delta_s, 4),
            "rows": delta_rows,
            "sql": DELTA_PLAN,
            "note": "what a plan made from the computation's entered/left rows (with their "
            "user ids) instead of the whole cohort against the whole sync state would read",
        },
    }, leaving


async def measure(sides: Sides, work: Path) -> dict[str, Any]:
    async with engage_server(sides.engage, work) as base:
        log("the cohort, computed once; destination and real-time sync …")
        cohort_id, sync_id, compute_s = await prepare_sync(sides, base)
        first = await first_sync(sides, cohort_id, sync_id)
        headers = {"Authorization": f"Bearer {sides.keys['rest_api_key']}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=600) as http:
            response = await http.post("/segments/create", json={
                "name": "Gold", "filter": {"amplitude_cohorts": {
                    "comparison": "includes_value", "value": cohort_id}}})  # fmt: skip
            if response.status_code != 201:
                raise RuntimeError(f"segment: {response.status_code} {response.text[:300]}")
            segment_id = response.json()["segment_id"]
            started = time.perf_counter()
            size = await segment_size(http, segment_id)
            first_size_s = time.perf_counter() - started
            if size != sides.members:
                raise RuntimeError(f"segment size {size}, expected {sides.members}")
            churned, leaving = await churn_tick(sides, http, cohort_id, sync_id, segment_id)
    total = sides.members + sides.moved
    gone = set(leaving)
    expected = {f"user-{a}" for a in range(1, total + 1) if a not in gone}
    found = engage_members(sides.engage, sides.keys["workspace_id"], cohort_id)
    if len(found) != len(expected) or set(found) != expected:
        raise RuntimeError(f"engage holds {len(found)} members, not the expected set")
    return {
        "cohort": "behavioral: user property gp:tier is gold, computed once before the sync "
        f"({round(compute_s, 2)} s, {sides.members:,} entered)",
        "first_sync": first,
        "segment_size_first_request_s": round(first_size_s, 3),
        "churn": churned,
        "membership_checked": "engage's cohort_members, id by id, equal the expected set",
        "targets_met": {"first_sync": first["meets_target"], "churn": churned["meets_target"]},
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    members = QUICK_MEMBERS if args.quick else args.members
    moved = members // 100
    total = members + moved
    load_start = os.getloadavg()
    with databases(args.db_url, ["engage", "analytics"]) as (work, stores):
        engage, analytics = stores["engage"], stores["analytics"]
        keys = await engage_setup(engage.url)
        project_id = int((await create_project(analytics.url))["project_id"])
        now_s = int(time.time())
        log(f"seeding {total:,} profiles in engage and {total:,} users in analytics …")
        started = time.perf_counter()
        seed_engage(engage, keys["workspace_id"], total, now_s)
        seed_analytics(analytics, project_id, members, total, now_s)
        seed_s = time.perf_counter() - started
        db = Database.connect(analytics.url)
        statements = Statements()
        statements.attach(db)
        sides = Sides(engage, analytics, keys, project_id, members, moved, db, statements)
        try:
            with Autovacuum([engage, analytics], args.autovacuum_naptime) as autovacuum:
                measured = await measure(sides, work)
        finally:
            await db.dispose()
        if autovacuum.stores:
            measured["autovacuum_emulated"] = {"naptime_s": args.autovacuum_naptime,
                                               "actions": autovacuum.actions}  # fmt: skip
        database = f"engage: {engage.version()}; analytics: {analytics.version()}"
    return {
        "benchmark": "cohort_sync",
        "database": database,
        "members": members,
        "profiles_in_engage": total,
        "users_in_analytics": total,
        "seed_seconds": round(seed_s, 1),
        **measured,
        "timing": "wall clock in this process (the sync runs here, engage is a separate "
        "`cohortbridge serve engage` process); the machine (2 cores) is shared with other "
        "benchmarks, so absolute times drift",
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
    parser.add_argument("--members", type=int, default=1_000_000, help="cohort size (1000000)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_MEMBERS:,} members")
    parser.add_argument("--db-url", help="a loopback PostgreSQL server, e.g. "
                        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres: two throwaway "
                        "databases are created there and dropped (default: SQLite)")  # fmt: skip
    parser.add_argument("--autovacuum-naptime", type=float, default=60.0,
                        help="PostgreSQL without autovacuum: how often the benchmark applies "
                        "autovacuum's rules itself (autovacuum_naptime's default, 60 s)")  # fmt: skip
    args = parser.parse_args()
    if args.members < 1000:
        parser.error("--members must be at least 1000")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    result = asyncio.run(run(args))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
