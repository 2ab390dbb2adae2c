"""What the benchmarks share: a migrated SQLite database, a real server process, RSS."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from cohortbridge.db import migrate


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def migrated_database() -> tuple[Path, Path, str]:
    """(work dir, SQLite file, async URL) of a fresh, migrated engage database."""
    work = Path(tempfile.mkdtemp(prefix="cb-bench-"))
    db_path = work / "engage.db"
    url = f"sqlite+aiosqlite:///{db_path}"
    migrate.upgrade("engage", url)
    return work, db_path, url


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_engage(
    url: str, work: Path, workers: int, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    """``cohortbridge serve engage`` on a free loopback port: (process, base URL)."""
    port = free_port()
    environment = {**os.environ, "COHORTBRIDGE_ENGAGE_DATABASE_URL": url,
                   "COHORTBRIDGE_DATA_DIR": str(work / "var"),
                   "COHORTBRIDGE_LOG_LEVEL": "warning", **env}  # fmt: skip
    command = [sys.executable, "-m", "cohortbridge.cli", "serve", "engage", "--port", str(port),
               "--workers", str(workers)]  # fmt: skip
    return subprocess.Popen(command, env=environment), f"http://127.0.0.1:{port}"


async def wait_up(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as http:
        for _ in range(600):
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the server did not start")


class RssSampler(threading.Thread):
    """Peak resident memory of a process and its children (the workers), sampled."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.start_rss = self.rss()
        self.peak = self.start_rss
        self.stop = threading.Event()

    def rss(self) -> int:
        try:
            processes = [self.process, *self.process.children(recursive=True)]
            return sum(p.memory_info().rss for p in processes)
        except psutil.Error:
            return 0

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.05)


def facts() -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
