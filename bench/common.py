"""What the benchmarks share: a migrated SQLite database, a real server process, RSS."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import platform
import shutil
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

import cohortbridge
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


class LeanClient:
    """One keep-alive HTTP/1.1 connection that sends prepared requests: the load generator
    of the write benchmarks, as wrk or h2load would be.

    httpx costs ~4 ms of client CPU per 25 KB request here (measured: 0.31 cores at 94
    requests/s), CPU taken from the server on this 2-core machine. This writes the request
    head and body as bytes and reads the status line, the headers and a Content-Length body:
    what uvicorn sends for these endpoints (anything else is an error).
    """

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        parsed = httpx.URL(base)
        self._host = parsed.host
        self._port = parsed.port or 80
        self._head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        head = (f"POST {path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n{self._head}"
                f"Content-Length: {len(body)}\r\n\r\n")  # fmt: skip
        self._writer.write(head.encode() + body)
        status_line = await self._reader.readline()
        status = int(status_line.split()[1])
        length = None
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"no Content-Length in the answer ({status_line!r})")
        return status, await self._reader.readexactly(length)

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()


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


def code_version() -> str:
    """The commit of the cohortbridge package measured, ``+dirty`` when its src/ differs."""
    root = Path(cohortbridge.__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def cpu_seconds(process: psutil.Process) -> float:
    total = 0.0
    for proc in (process, *process.children(recursive=True)):
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def connections_per_process(server: psutil.Process, port: int) -> list[int]:
    """Established connections to ``port`` held by each process of the server (the
    supervisor first, then its children: with ``--workers``, multiprocessing's resource
    tracker and the workers): shows how the clients spread over the workers."""
    counts = []
    for proc in [server, *server.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            held = proc.net_connections(kind="tcp")
            counts.append(
                sum(1 for c in held if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port)
            )
    return counts


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def start_py_spy(pid: int, output: str) -> subprocess.Popen[bytes]:
    binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    fmt = {".svg": "flamegraph", ".json": "speedscope"}.get(Path(output).suffix, "raw")
    command = [binary, "record", "--pid", str(pid), "--output", output, "--format", fmt,
               "--rate", "200", "--subprocesses", "--threads", "--idle"]  # fmt: skip
    return subprocess.Popen(command, stdout=sys.stderr)
