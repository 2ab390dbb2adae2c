"""Read-only SQLite statements run in worker processes (long segment exports).

Two SQLite statements that build text take longer side by side in one process than one after
the other (measured: 300,000 users' export lines, 3.8 s one after the other, 5.4 s on two
threads: the library's allocator serialises them); in two processes they take 2.4 s (4.4 s one
after the other in that run). So a long export reads its pages here, each process on a
read-only connection of its own, each page a transaction of its own, as the in-process reads
are. The processes start on first use (``spawn``: the server's threads and connections are not
inherited) and stop with the database.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

# One more than the cores: while this process writes a page (zip compression) the others keep
# reading (2 cores: 3 processes 99.5-104k users/s, 2 processes 92.8-95.3k, in process).
WORKERS = min(4, (os.cpu_count() or 1) + 1)

_connection: sqlite3.Connection | None = None


def _open(path: str) -> None:
    """In the worker: its one connection, read-only, as the server's point reader opens it."""
    global _connection  # noqa: PLW0603 - one connection per worker process
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA busy_timeout=5000")
    connection.execute("PRAGMA query_only=ON")
    connection.execute("PRAGMA cache_size=-65536")
    _connection = connection


def _text(sql: str, params: tuple[Any, ...]) -> tuple[int, bytes]:
    """In the worker: the statement's first column, one line per row, and the row count."""
    if _connection is None:
        raise RuntimeError("the reader process has no connection")
    rows = _connection.execute(sql, params).fetchall()
    if not rows:
        return 0, b""
    return len(rows), ("\n".join([row[0] for row in rows]) + "\n").encode()


class ReadProcesses:
    """Worker processes that read one SQLite file."""

    def __init__(self, path: str, workers: int = WORKERS) -> None:
        self.path = path
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    async def text(self, sql: str, params: Sequence[Any]) -> tuple[int, bytes]:
        """Rows of text (a statement's first column) as newline-terminated lines, and how
        many, read in a worker process."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._started(), _text, sql, tuple(params))
        except BrokenProcessPool:
            # A worker died (killed, out of memory): a broken pool refuses every later call,
            # so this one is retried once on new workers.
            self.close()
            return await loop.run_in_executor(self._started(), _text, sql, tuple(params))

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_open,
                initargs=(self.path,),
            )
        return self._pool

    @property
    def started(self) -> bool:
        return self._pool is not None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
