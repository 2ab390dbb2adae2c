"""Engine factory.

SQLite is the embedded default and allows one writer at a time, so a ``Database`` holds two
engines there: a writer with a single pooled connection whose transactions begin with
``BEGIN IMMEDIATE`` (writers queue in the pool instead of failing with ``SQLITE_BUSY`` half-way),
and a reader pool for read-only work. On PostgreSQL both are the same engine.

``Database.write`` runs a synchronous unit of work (``db/unit.py``) as one transaction; on
SQLite the units waiting for the writer are committed together (``GroupWriter``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from cohortbridge.db.dialect import regexp_ignoring_case
from cohortbridge.db.processes import ReadProcesses
from cohortbridge.db.unit import ConnectionExecutor, SqliteExecutor, Unit

T = TypeVar("T")
log = logging.getLogger("cohortbridge.db")

BUSY_TIMEOUT_MS = 30000
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
    "PRAGMA cache_size=-65536",
    "PRAGMA temp_store=MEMORY",
    # The writer checkpoints the WAL every 100,000 pages (~400 MB) instead of every 1,000: a
    # checkpoint copies each page once however often it was written since the last one, so
    # fewer, larger checkpoints cut the COMMIT that runs them (ingest's raw engine: 10,000
    # pages 15.9k events/s, 100,000 pages 20.9k; 1,000 → 10,000 was 2.9 → 2.1 ms a request).
    # With synchronous=NORMAL the WAL is synced at checkpoints: a power loss (not a crash of
    # the process) may lose the commits since the last one, here a few seconds of writes.
    "PRAGMA wal_autocheckpoint=100000",
    # A WAL past this is cut back when it restarts (it would otherwise keep its largest size).
    "PRAGMA journal_size_limit=67108864",
)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


class WriterSlot:
    """The ``sqlite3`` object under the SQLite writer's single pooled connection.

    The writer's connections are made with a ``sqlite3.Connection`` subclass that records
    itself here, so that whoever has checked the writer out of its pool can run a unit of work
    on it directly, without a trip to aiosqlite's thread per statement.
    """

    def __init__(self) -> None:
        self.connection: sqlite3.Connection | None = None

    def factory(self) -> type[sqlite3.Connection]:
        slot = self

        class WriterConnection(sqlite3.Connection):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                slot.connection = self

        return WriterConnection


def _sqlite_engine(
    url: str, *, begin: str, pool_size: int, slot: WriterSlot | None = None
) -> AsyncEngine:
    # The writer's connection is used from the event loop's thread as well as aiosqlite's
    # (never both at once: only by whoever has it checked out).
    connect_args = {} if slot is None else {"factory": slot.factory(), "check_same_thread": False}
    engine = create_async_engine(
        url,
        connect_args=connect_args,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=300,
        pool_pre_ping=False,
        # Every use is a begin() block that commits or rolls back, so the pool's own rollback
        # on check-in would only cost another trip to the driver's thread.
        pool_reset_on_return=None,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (SQLAlchemy docs,
        # "Serializable isolation / Savepoints / Transactional DDL").
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()
        # Segment filters' "matches regex" (PostgreSQL has ``~*``; SQLite has no regex of its own).
        dbapi_connection.create_function("cb_regexp", 2, regexp_ignoring_case, deterministic=True)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine


@dataclass
class _Job(Generic[T]):
    unit: Unit[T]
    done: asyncio.Future[T]
    offload: bool = False
    taken: bool = False


class WriterLock:
    """An advisory lock beside the database file, held by a ``GroupWriter`` around each of its
    transactions, so that the server processes of one database take turns as writers.

    SQLite serializes writers itself, but a writer that finds the database locked polls
    (its busy handler sleeps 1, 2, 5, … 100 ms between tries), so two processes that write
    all the time spend much of it asleep. A process blocked in ``flock`` wakes as soon as the
    other releases. Every write of a ``Database`` takes it (units of work and
    ``Database.transaction`` alike, CLI commands included); SQLite's own locking still
    decides, so another program writing the file is waited for through the busy timeout.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd: int | None = None

    def _file(self) -> int:
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        return self._fd

    def try_acquire(self) -> bool:
        try:
            fcntl.flock(self._file(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def acquire(self) -> None:
        fcntl.flock(self._file(), fcntl.LOCK_EX)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _GroupLost(Exception):
    """SQLite rolled the whole transaction back on its own (e.g. SQLITE_FULL)."""


class GroupWriter:
    """SQLite: write units of work, several per transaction, each in its own SAVEPOINT.

    A unit that raises rolls back only its own writes and gets its own exception; the others
    commit, and every answer waits for COMMIT. If BEGIN or COMMIT fails, or SQLite drops the
    transaction, the units are run again one per transaction, so each gets its own outcome.

    Units run on the writer's ``sqlite3`` connection with no await between two statements:
    on the event loop's thread (no thread handoff, and no fight with the loop for the GIL
    over their Python), or, when ``offload`` (units whose cost is mostly SQLite's own), on
    the writer thread, where SQLite releases the GIL and the loop keeps reading and
    validating the next requests. A BEGIN that has to wait for another process's write
    waits on the writer thread, never on the loop, and COMMIT (WAL writes, checkpoints) runs
    there too; the units that arrive meanwhile make the next group.
    """

    MAX_GROUP = 16

    def __init__(
        self, engine: AsyncEngine, slot: WriterSlot, lock: WriterLock | None = None
    ) -> None:
        self._engine = engine
        self._slot = slot
        self._lock = lock
        self._pending: deque[_Job[Any]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        if self._lock is not None:
            self._lock.close()

    async def run(self, unit: Unit[T], wait_s: float | None = None, *, offload: bool = False) -> T:
        """Run ``unit`` in a write transaction; ``TimeoutError`` if it has not started within
        ``wait_s`` (it then never runs)."""
        job: _Job[T] = _Job(unit, asyncio.get_running_loop().create_future(), offload)
        self._pending.append(job)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        try:
            return await asyncio.wait_for(asyncio.shield(job.done), wait_s)
        except TimeoutError:
            if not job.taken:
                self._pending.remove(job)
                raise
        except asyncio.CancelledError:
            if not job.taken:
                self._pending.remove(job)
            raise
        # Started within the bound: its outcome is the answer.
        return await job.done

    async def _drain(self) -> None:
        try:
            while self._pending:
                async with self._engine.connect(), self.turn():
                    await self._transaction()
        except BaseException as error:
            while self._pending:
                _settle(self._pending.popleft(), False, error)
            raise

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """This process's turn as the database's writer (``WriterLock``), if it has one;
        ``Database.transaction`` takes it too."""
        lock = self._lock
        if lock is None:
            yield
            return
        try:
            free = lock.try_acquire()
        except OSError as error:
            # A data directory this process may not create files in: SQLite's own locking
            # still serializes the writers, only without the quick hand-over.
            log.warning("no writer lock beside the database (%s); writing without it", error)
            self._lock = None
            yield
            return
        if not free:
            waiting = self._thread.submit(lock.acquire)
            try:
                await asyncio.wrap_future(waiting)
            except asyncio.CancelledError:
                # The thread may still get the lock: it must not keep it for this process.
                waiting.add_done_callback(lambda _: lock.release())
                raise
        try:
            yield
        finally:
            lock.release()  # at once if COMMIT did not already (_commit)

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def _transaction(self) -> None:
        connection = self._slot.connection
        if connection is None:
            raise RuntimeError("the SQLite writer has no connection")
        taken = self._take(self.MAX_GROUP)
        try:
            if not _begin_now(connection):
                await self._in_thread(connection.execute, "BEGIN IMMEDIATE")
        except Exception as error:  # e.g. another process kept the database locked
            for job in taken:
                _settle(job, False, error)
            return
        except BaseException as error:
            for job in taken:
                _settle(job, False, error)
            raise
        await self._group(connection, taken)

    async def _group(self, connection: sqlite3.Connection, taken: list[_Job[Any]]) -> None:
        """Run ``taken`` (and units submitted meanwhile) in the open transaction; commit."""
        outcomes: list[tuple[bool, Any]] = []
        try:
            jobs = list(taken)
            while jobs:
                if any(job.offload for job in jobs):
                    outcomes += await self._in_thread(self._savepoints, connection, jobs)
                else:
                    outcomes += self._savepoints(connection, jobs)
                # Units submitted while an offloaded one ran join this group.
                jobs = self._take(self.MAX_GROUP - len(taken))
                taken += jobs
            await self._in_thread(self._commit, connection)
        except Exception:
            await self._in_thread(_rollback, connection)
            outcomes = await self._in_thread(self._one_by_one, connection, taken)
        except BaseException as error:
            _rollback(connection)
            for job in taken:
                _settle(job, False, error)
            raise
        for job, (ok, value) in zip(taken, outcomes, strict=True):
            _settle(job, ok, value)

    def _commit(self, connection: sqlite3.Connection) -> None:
        """COMMIT, and hand the database to the next process at once: the loop may be busy
        (validating the next request) for a few ms before it gets back to this group."""
        connection.execute("COMMIT")
        if self._lock is not None:
            self._lock.release()

    def _take(self, room: int) -> list[_Job[Any]]:
        jobs: list[_Job[Any]] = []
        while self._pending and len(jobs) < room:
            job = self._pending.popleft()
            job.taken = True
            jobs.append(job)
        return jobs

    @staticmethod
    def _savepoints(
        connection: sqlite3.Connection, jobs: list[_Job[Any]]
    ) -> list[tuple[bool, Any]]:
        ex = SqliteExecutor(connection)
        outcomes: list[tuple[bool, Any]] = []
        for job in jobs:
            ex.run("SAVEPOINT unit")
            try:
                value = job.unit(ex)
            except Exception as error:
                if not connection.in_transaction:
                    raise _GroupLost() from error
                ex.run("ROLLBACK TO unit")
                ex.run("RELEASE unit")
                outcomes.append((False, error))
                continue
            ex.run("RELEASE unit")
            outcomes.append((True, value))
        return outcomes

    @staticmethod
    def _one_by_one(
        connection: sqlite3.Connection, jobs: list[_Job[Any]]
    ) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        ex = SqliteExecutor(connection)
        for job in jobs:
            try:
                ex.run("BEGIN IMMEDIATE")
                value = job.unit(ex)
                ex.run("COMMIT")
            except Exception as error:
                _rollback(connection)
                outcomes.append((False, error))
                continue
            outcomes.append((True, value))
        return outcomes


def _begin_now(connection: sqlite3.Connection) -> bool:
    """BEGIN IMMEDIATE if no other process is writing; False (nothing begun) if one is.

    Waiting for the other writer (up to the busy timeout) is left to the writer thread, so
    that it never blocks the event loop.
    """
    connection.execute("PRAGMA busy_timeout=0")
    try:
        connection.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return False
    finally:
        connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return True


def _rollback(connection: sqlite3.Connection) -> None:
    if connection.in_transaction:
        connection.execute("ROLLBACK")


def _settle(job: _Job[Any], ok: bool, value: Any) -> None:
    if job.done.done():
        return
    if ok:
        job.done.set_result(value)
    else:
        job.done.set_exception(value)


class PointReader:
    """SQLite: one read-only connection for the lookups every request starts with.

    A lookup is an indexed SELECT of a row or two: run at once on the event loop's thread it
    costs tens of microseconds, where a read transaction through aiosqlite costs a thread
    handoff per step (BEGIN, execute, fetch, COMMIT). It never waits: if SQLite answers
    busy, the caller falls back to a read transaction.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None

    def executor(self) -> SqliteExecutor:
        if self._connection is None:
            connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA busy_timeout=0")
            connection.execute("PRAGMA query_only=ON")
            # It also reads the profiles a /users/track request writes (its draft).
            connection.execute("PRAGMA cache_size=-65536")
            self._connection = connection
        return SqliteExecutor(self._connection)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _sqlite_file(url: str) -> str | None:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


@dataclass
class Database:
    url: str
    writer: AsyncEngine
    reader: AsyncEngine
    group: GroupWriter | None = None
    points: PointReader | None = None
    # SQLite files: worker processes for long exports' reads, started on first use.
    processes: ReadProcesses | None = None
    _turns: asyncio.Lock | None = field(default=None, init=False, repr=False)

    @property
    def dialect(self) -> str:
        return self.writer.dialect.name

    @property
    def single_writer(self) -> bool:
        """SQLite: one write transaction at a time, for every process of the database."""
        return self.group is not None

    @classmethod
    def connect(cls, url: str, *, pool_size: int = 10) -> Database:
        if is_sqlite(url):
            slot = WriterSlot()
            writer = _sqlite_engine(url, begin="BEGIN IMMEDIATE", pool_size=1, slot=slot)
            reader = _sqlite_engine(url, begin="BEGIN", pool_size=pool_size)
            path = _sqlite_file(url)
            points = PointReader(path) if path is not None else None
            lock = WriterLock(f"{path}-writer") if path is not None else None
            processes = ReadProcesses(path) if path is not None else None
            return cls(url, writer, reader, GroupWriter(writer, slot, lock), points, processes)
        # JSONB read back through orjson, as SQLite's JSON text is: a number past 64 bits
        # (PostgreSQL writes -2.3e+24 as -2343253014521943000000000) is a float, which orjson
        # can write again, not a Python int it refuses (a 500 on /users/export/ids).
        engine = create_async_engine(
            url, pool_size=pool_size, max_overflow=pool_size, json_deserializer=orjson.loads
        )
        return cls(url, engine, engine)

    @contextlib.asynccontextmanager
    async def transaction(
        self, acquire_timeout: float | None = None
    ) -> AsyncIterator[AsyncConnection]:
        """A read-write transaction, committed when the block ends without error.

        With ``acquire_timeout``, waiting longer than that for a writer connection (SQLite has
        one) or for this process's turn as SQLite's writer raises ``TimeoutError``.
        """
        async with contextlib.AsyncExitStack() as held:
            async with asyncio.timeout(acquire_timeout):
                conn = await held.enter_async_context(self.writer.connect())
                if self.group is not None:
                    # SQLite: this process's turn as the database's writer, the group writer's
                    # lock taken in the same order (the writer connection, then the turn).
                    await held.enter_async_context(self.group.turn())
            async with conn.begin():
                yield conn

    async def write(
        self, unit: Unit[T], acquire_timeout: float | None = None, *, offload: bool = False
    ) -> T:
        """Run ``unit`` as one write transaction, committed if it returns.

        With ``acquire_timeout``, waiting longer than that for the writer (SQLite) or a
        connection raises ``TimeoutError`` and nothing is written. ``offload``: the unit's
        cost is mostly the database's own (see ``GroupWriter``).
        """
        if self.group is not None:
            return await self.group.run(unit, acquire_timeout, offload=offload)

        def sync(connection: Connection) -> T:
            return unit(ConnectionExecutor(connection))

        async with self.transaction(acquire_timeout) as conn:
            return await conn.run_sync(sync)

    async def lookup(self, unit: Unit[T]) -> T:
        """A short read-only unit (a key by its digest), outside any transaction of ours."""
        if self.points is not None:
            with contextlib.suppress(sqlite3.OperationalError):  # busy: a read transaction
                return unit(self.points.executor())

        def sync(connection: Connection) -> T:
            return unit(ConnectionExecutor(connection))

        async with self.read() as conn:
            return await conn.run_sync(sync)

    @contextlib.asynccontextmanager
    async def write_turn(self, wait_s: float | None = None) -> AsyncIterator[None]:
        """On SQLite, one writing request at a time in this process, from its last pure-Python
        step (validation) to its commit; a no-op on PostgreSQL.

        SQLite has one writer anyway. Without this, other requests' validation runs between the
        writer's statements (the event loop is first come, first served) and every one of them
        keeps the single writer waiting; throughput then falls by half.
        """
        if self.dialect != "sqlite":
            yield
            return
        if self._turns is None:
            self._turns = asyncio.Lock()
        async with asyncio.timeout(wait_s):
            await self._turns.acquire()
        try:
            yield
        finally:
            self._turns.release()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.reader.begin() as conn:
            yield conn

    async def dispose(self) -> None:
        if self.group is not None:
            self.group.close()
        if self.points is not None:
            self.points.close()
        if self.processes is not None:
            await asyncio.to_thread(self.processes.close)
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()
