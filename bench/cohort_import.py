"""Benchmark: the partner cohort import over real HTTP (issue 3).

Sets up N identified profiles and N anonymous profiles with one device each (directly in the
database: setup is not measured), starts ``cohortbridge serve engage`` as a separate process,
and with 4 concurrent clients sends, as 1,000-id requests to
``POST /partners/amplitude/cohorts/users``:

1. N external ids (adds),
2. N/10 of them again as removals,
3. N device ids onto the anonymous profiles (adds to a second cohort).

It prints one JSON object: ids/s per phase and overall, the server's peak RSS and its growth,
and, measured in the same run, the raw engine (stdlib sqlite3, one connection, bare
``executemany``) writing the same membership rows in the same 1,000-row transactions.
Usage: ``python bench/cohort_import.py [--profiles N] [--concurrency 4] [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.common import RssSampler, facts, log, migrated_database, start_engage, wait_up
from cohortbridge.db.engine import Database
from cohortbridge.engage.partners import service as partners
from cohortbridge.engage.workspaces import service as workspaces
from cohortbridge.kit.ids import object_id

BATCH = 1000
STAMP = "2026-01-01 00:00:00.000000"


async def credentials(url: str) -> dict[str, str]:
    db = Database.connect(url)
    try:
        async with db.transaction() as conn:
            ws = await workspaces.bootstrap(conn, "Bench", "http://127.0.0.1")
            partner = await partners.create_partner_key(conn, "amplitude")
            secret = await partners.create_import_key(conn, ws.workspace_id, "amplitude", "x")
    finally:
        await db.dispose()
    return {
        "workspace_id": ws.workspace_id,
        "app_id": ws.app_id,
        "partner_api_key": partner.partner_api_key,
        "client_secret": secret.data_import_key,
    }


def seed_profiles(path: Path, workspace_id: str, app_id: str, count: int) -> None:
    """N identified profiles (user-i) and N anonymous ones holding device dev-i."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    columns = (
        "workspace_id, braze_id, external_id, standard, custom_attributes, random_bucket, "
        "total_revenue, created_at, updated_at"
    )
    insert = f"INSERT INTO profiles ({columns}) VALUES (?, ?, ?, '{{}}', '{{}}', 0, 0, ?, ?)"
    for start in range(0, count, 50_000):
        stop = min(start + 50_000, count)
        conn.executemany(
            insert,
            [(workspace_id, object_id(), f"user-{i}", STAMP, STAMP) for i in range(start, stop)],
        )
        conn.executemany(
            insert, [(workspace_id, object_id(), None, STAMP, STAMP) for _ in range(start, stop)]
        )
    anonymous = conn.execute(
        "SELECT id FROM profiles WHERE external_id IS NULL ORDER BY id"
    ).fetchall()
    conn.executemany(
        "INSERT INTO profile_devices (workspace_id, device_id, profile_id, app_id, created_at, "
        "last_seen_at) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (workspace_id, f"dev-{i}", pid, app_id, STAMP, STAMP)
            for i, (pid,) in enumerate(anonymous)
        ],
    )
    conn.commit()
    conn.close()


async def send_phase(
    base: str, creds: dict[str, str], cohort: str, kind: str, ids: list[str], remove: bool,
    concurrency: int,
) -> float:  # fmt: skip
    batches = [ids[i : i + BATCH] for i in range(0, len(ids), BATCH)]
    queue: asyncio.Queue[list[str]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            while not queue.empty():
                batch = queue.get_nowait()
                change: dict[str, Any] = {kind: batch}
                if remove:
                    change["should_remove"] = True
                body = {"partner_api_key": creds["partner_api_key"],
                        "client_secret": creds["client_secret"], "cohort_id": cohort,
                        "cohort_changes": [change]}  # fmt: skip
                response = await http.post(
                    "/partners/amplitude/cohorts/users",
                    content=orjson.dumps(body),
                    headers={"Content-Type": "application/json"},
                )
                if response.status_code != 201:
                    raise RuntimeError(f"{response.status_code} {response.text}")

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return time.perf_counter() - started


def raw_engine(path: Path, count: int) -> dict[str, float]:
    """The same membership rows written by bare executemany, 1,000 per transaction."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                   "PRAGMA foreign_keys=ON"):  # fmt: skip
        conn.execute(pragma)
    now = dt.datetime.now(dt.UTC).isoformat(sep=" ")
    workspace_id, partner = conn.execute(
        "SELECT workspace_id, partner FROM cohorts LIMIT 1"
    ).fetchone()
    ids = {}
    for name in ("raw-users", "raw-devices"):
        conn.execute(
            "INSERT INTO cohorts (workspace_id, partner, cohort_id, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?)", (workspace_id, partner, name, now, now),
        )  # fmt: skip
        ids[name] = conn.execute("SELECT id FROM cohorts WHERE cohort_id = ?", (name,)).fetchone()[
            0
        ]
    identified = [
        r[0]
        for r in conn.execute("SELECT id FROM profiles WHERE external_id IS NOT NULL ORDER BY id")
    ]
    anonymous = [
        r[0] for r in conn.execute("SELECT id FROM profiles WHERE external_id IS NULL ORDER BY id")
    ]
    timings = {}
    for phase, cohort, pids, sql in (
        ("add_user_ids", "raw-users", identified[:count],
         "INSERT INTO cohort_members (cohort, profile_id, added_at, added_in) VALUES (?, ?, ?, 1)"),
        ("remove_user_ids", "raw-users", identified[: count // 10],
         "DELETE FROM cohort_members WHERE cohort = ? AND profile_id = ? AND ? IS NOT NULL"),
        ("add_device_ids", "raw-devices", anonymous[:count],
         "INSERT INTO cohort_members (cohort, profile_id, added_at, added_in) VALUES (?, ?, ?, 1)"),
    ):  # fmt: skip
        started = time.perf_counter()
        for start in range(0, len(pids), BATCH):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, [(ids[cohort], pid, now) for pid in pids[start : start + BATCH]])
            conn.execute("COMMIT")
        timings[phase] = time.perf_counter() - started
    conn.close()
    return timings


async def run(args: argparse.Namespace) -> dict[str, Any]:
    count = 20_000 if args.quick else args.profiles
    work, db_path, url = migrated_database()
    creds = await credentials(url)
    log(f"seeding {count:,} identified and {count:,} anonymous profiles …")
    seed_profiles(db_path, creds["workspace_id"], creds["app_id"], count)
    server, base = start_engage(
        url, work, args.workers, {"COHORTBRIDGE_RATE_COHORT_IMPORT": str(10**9)}
    )
    try:
        await wait_up(base)
        sampler = RssSampler(server.pid)
        sampler.start()
        user_ids = [f"user-{i}" for i in range(count)]
        device_ids = [f"dev-{i}" for i in range(count)]
        timings = {}
        log("phase 1: add external ids …")
        timings["add_user_ids"] = await send_phase(
            base, creds, "users", "user_ids", user_ids, False, args.concurrency
        )
        log("phase 2: remove a tenth …")
        timings["remove_user_ids"] = await send_phase(
            base, creds, "users", "user_ids", user_ids[: count // 10], True, args.concurrency
        )
        log("phase 3: add device ids of anonymous profiles …")
        timings["add_device_ids"] = await send_phase(
            base, creds, "devices", "device_ids", device_ids, False, args.concurrency
        )
        sampler.stop.set()
        sampler.join()
    finally:
        server.terminate()
        server.wait(timeout=60)
    check = sqlite3.connect(db_path)
    sizes = dict(
        check.execute(
            "SELECT c.cohort_id, count(*) FROM cohort_members m JOIN cohorts c ON c.id = m.cohort "
            "GROUP BY c.cohort_id"
        ).fetchall()
    )
    members = check.execute("SELECT count(*) FROM cohort_members").fetchone()[0]
    check.close()
    expected = count - count // 10 + count
    if sizes.get("users", 0) + sizes.get("devices", 0) != expected or members != expected:
        raise RuntimeError(f"membership mismatch: {sizes}, {members} rows, expected {expected}")
    log("raw engine, same rows …")
    raw = raw_engine(db_path, count)
    total_ids = count + count // 10 + count
    ours = total_ids / sum(timings.values())
    raw_rate = total_ids / sum(raw.values())
    return {
        "benchmark": "cohort_import",
        **facts(),
        "profiles": 2 * count,
        "concurrency": args.concurrency,
        "ids": total_ids,
        "ids_per_s": round(ours),
        "phases_ids_per_s": {
            "add_user_ids": round(count / timings["add_user_ids"]),
            "remove_user_ids": round(count // 10 / timings["remove_user_ids"]),
            "add_device_ids": round(count / timings["add_device_ids"]),
        },
        "raw_ids_per_s": round(raw_rate),
        "raw_phases_ids_per_s": {
            "add_user_ids": round(count / raw["add_user_ids"]),
            "remove_user_ids": round(count // 10 / raw["remove_user_ids"]),
            "add_device_ids": round(count / raw["add_device_ids"]),
        },
        "ratio_to_raw": round(ours / raw_rate, 3),
        "server_rss_start_mb": round(sampler.start_rss / 2**20, 1),
        "server_rss_peak_mb": round(sampler.peak / 2**20, 1),
        "server_rss_growth_mb": round((sampler.peak - sampler.start_rss) / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--profiles",
        type=int,
        default=1_000_000,
        help="identified profiles (and as many anonymous)",
    )
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    result = asyncio.run(run(parser.parse_args()))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
