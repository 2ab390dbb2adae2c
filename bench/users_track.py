"""Benchmark: ``POST /users/track`` over real HTTP (issue 2).

Starts ``cohortbridge serve engage`` as a separate process on SQLite and, with 4 concurrent
clients, sends requests of 75 attributes objects + 75 event objects:

1. ``create``: N new profiles (each attributes object creates one, with 4 attributes),
2. ``update``: the same N profiles again (attributes changed, more events).

It prints one JSON object with objects/s per phase and overall and, measured in the same run,
the raw engine (stdlib sqlite3, one connection, bare ``executemany``) writing the same rows in
the same per-request transactions: profiles inserted or updated, raw events, per-profile event
stats and per-day counts, the data-point ledger.
Usage: ``python bench/users_track.py [--profiles 100000] [--concurrency 4] [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.common import RssSampler, facts, log, migrated_database, start_engage, wait_up
from cohortbridge.db.engine import Database
from cohortbridge.engage.workspaces import service as workspaces
from cohortbridge.kit.ids import object_id

PER_REQUEST = 75
EVENT_NAMES = ("song_played", "login", "purchase_viewed", "search", "share")


def bodies(count: int, phase: str) -> list[bytes]:
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


async def send(base: str, key: str, payloads: list[bytes], concurrency: int) -> float:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for payload in payloads:
        queue.put_nowait(payload)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            while not queue.empty():
                response = await http.post(
                    "/users/track", content=queue.get_nowait(), headers=headers
                )
                if response.status_code != 201:
                    raise RuntimeError(f"{response.status_code} {response.text[:300]}")

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return time.perf_counter() - started


def _time(text: str) -> str:
    return (
        dt.datetime.fromisoformat(text)
        .astimezone(dt.UTC)
        .replace(tzinfo=None)
        .isoformat(sep=" ", timespec="microseconds")
    )


def raw_engine(path: Path, workspace_id: str, payloads: dict[str, list[bytes]]) -> dict[str, float]:
    """The rows the server writes for the same requests, by bare executemany into a fresh
    workspace of the same database, one transaction per request."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                   "PRAGMA foreign_keys=ON"):  # fmt: skip
        conn.execute(pragma)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
    raw_ws = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO workspaces (id, name, created_at) VALUES (?, ?, ?)", (raw_ws, "raw", now)
    )
    ids: dict[str, int] = {}
    timings = {}
    for phase, phase_payloads in payloads.items():
        decoded = [orjson.loads(p) for p in phase_payloads]
        started = time.perf_counter()
        for body in decoded:
            conn.execute("BEGIN IMMEDIATE")
            _raw_request(conn, raw_ws, body, ids, now)
            conn.execute("COMMIT")
        timings[phase] = time.perf_counter() - started
    conn.close()
    return timings


def _raw_request(
    conn: sqlite3.Connection, ws: str, body: dict[str, Any], ids: dict[str, int], now: str
) -> None:
    attrs = body["attributes"]
    new = [a for a in attrs if a["external_id"] not in ids]
    if new:
        conn.executemany(
            "INSERT INTO profiles (workspace_id, braze_id, external_id, first_name, standard, "
            "custom_attributes, random_bucket, total_revenue, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, '{}', ?, ?, 0, ?, ?)",
            [(ws, object_id(), a["external_id"], a["first_name"],
              orjson.dumps({k: a[k] for k in ("plan", "score", "vip")}).decode(),
              random.randrange(10000), now, now) for a in new],
        )  # fmt: skip
        placeholders = ",".join("?" * len(new))
        ids.update(conn.execute(
            f"SELECT external_id, id FROM profiles WHERE workspace_id = ? AND external_id IN ({placeholders})",
            (ws, *[a["external_id"] for a in new]),
        ).fetchall())  # fmt: skip
    old = [a for a in attrs if a not in new]
    if old:
        conn.executemany(
            "UPDATE profiles SET first_name = ?, custom_attributes = ?, updated_at = ? WHERE id = ?",
            [(a["first_name"], orjson.dumps({k: a[k] for k in ("plan", "score", "vip")}).decode(),
              now, ids[a["external_id"]]) for a in old],
        )  # fmt: skip
    events = [
        (ids[e["external_id"]], e["name"], _time(e["time"]), e["properties"])
        for e in body["events"]
    ]
    conn.executemany(
        "INSERT INTO custom_events (workspace_id, profile_id, name, time, properties) VALUES (?, ?, ?, ?, ?)",
        [(ws, pid, name, at, orjson.dumps(props).decode()) for pid, name, at, props in events],
    )
    conn.executemany(
        "INSERT INTO profile_event_stats (profile_id, name, count, first_at, last_at) VALUES (?, ?, 1, ?, ?) "
        "ON CONFLICT (profile_id, name) DO UPDATE SET count = count + 1, "
        "first_at = min(first_at, excluded.first_at), last_at = max(last_at, excluded.last_at)",
        [(pid, name, at, at) for pid, name, at, _ in events],
    )
    conn.executemany(
        "INSERT INTO profile_event_days (profile_id, name, day, count) VALUES (?, ?, ?, 1) "
        "ON CONFLICT (profile_id, name, day) DO UPDATE SET count = count + 1",
        [(pid, name, at[:10]) for pid, name, at, _ in events],
    )
    conn.execute(
        "INSERT INTO datapoints (workspace_id, day, source, count) VALUES (?, ?, 'users_track', ?) "
        "ON CONFLICT (workspace_id, day, source) DO UPDATE SET count = count + excluded.count",
        (ws, now[:10], 4 * len(attrs) + len(events)),
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    count = 6_000 if args.quick else args.profiles
    work, db_path, url = migrated_database()
    db = Database.connect(url)
    async with db.transaction() as conn:
        boot = await workspaces.bootstrap(conn, "Bench", "http://127.0.0.1")
    await db.dispose()
    payloads = {"create": bodies(count, "create"), "update": bodies(count, "update")}
    server, base = start_engage(
        url, work, args.workers, {"COHORTBRIDGE_RATE_USERS_TRACK": str(10**9)}
    )
    timings = {}
    try:
        await wait_up(base)
        sampler = RssSampler(server.pid)
        sampler.start()
        for phase, phase_payloads in payloads.items():
            log(f"{phase}: {len(phase_payloads):,} requests …")
            timings[phase] = await send(base, boot.rest_api_key, phase_payloads, args.concurrency)
        sampler.stop.set()
    finally:
        server.terminate()
        server.wait(timeout=60)
    log("raw engine, same rows …")
    raw = raw_engine(db_path, boot.workspace_id, payloads)
    objects = 2 * count  # per phase: one attributes object and one event per profile
    ours = 2 * objects / sum(timings.values())
    raw_rate = 2 * objects / sum(raw.values())
    return {
        "benchmark": "users_track",
        **facts(),
        "profiles": count,
        "concurrency": args.concurrency,
        "requests": sum(len(p) for p in payloads.values()),
        "objects": 2 * objects,
        "objects_per_s": round(ours),
        "phases_objects_per_s": {phase: round(objects / t) for phase, t in timings.items()},
        "raw_objects_per_s": round(raw_rate),
        "raw_phases_objects_per_s": {phase: round(objects / t) for phase, t in raw.items()},
        "ratio_to_raw": round(ours / raw_rate, 3),
        "server_rss_peak_mb": round(sampler.peak / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    result = asyncio.run(run(parser.parse_args()))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
