"""Worker processes behind one port, each handed its connections by the parent.

uvicorn's own ``--workers`` lets every worker accept from one shared socket: whichever wakes
first takes the connection. A few long-lived keep-alive connections (API clients, the
analytics side's own destinations) then often land on one worker while the other idles —
measured with four clients on two workers: 2/2, 3/1 and 4/0 all occur, and 3/1 runs at about
two thirds of 2/2's throughput. Here the parent alone accepts, and passes each connection
(``SCM_RIGHTS`` over a socket pair) to the worker with the fewest open connections; the
workers report their count on every tick of uvicorn's main loop (10 per second). The parent
accepts nothing until every worker serves.

The parent forwards SIGINT/SIGTERM to the workers, waits for their graceful shutdown and
starts a new worker in place of one that died.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import selectors
import signal
import socket
import struct
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn

# The parent logs where uvicorn's workers do (uvicorn.Config sets its handlers up).
log = logging.getLogger("uvicorn.error")

# A worker's report: its open connections and how many it has been handed in all.
REPORT = struct.Struct("!QQ")
STOP_GRACE_S = 30.0
STARTUP_FAILURE = 3  # uvicorn's exit code when an app cannot start
# Connections are accepted once every worker serves, or once one does after this long.
READY_TIMEOUT_S = 60.0


@dataclass
class WorkerSpec:
    """What every worker process runs: an ASGI app factory by import path."""

    app: str
    log_level: str = "info"


@dataclass
class _Worker:
    index: int
    process: BaseProcess
    control: socket.socket  # the parent's end of the pair
    sent: int = 0
    received: int = 0  # as last reported
    open: int = 0  # as last reported
    # A worker reports once it serves; one that exits before that failed to start.
    serving: bool = False

    @property
    def load(self) -> int:
        """Open connections, counting those handed over since the last report."""
        return self.open + self.sent - self.received


def least_loaded(loads: list[int], start: int) -> int:
    """The index of the smallest load; ties go to the first at or after ``start``."""
    count = len(loads)
    order = [(start + i) % count for i in range(count)]
    return min(order, key=lambda i: loads[i])


class Balancer:
    """The parent: binds ``host:port``, runs ``workers`` processes, hands them connections."""

    def __init__(self, spec: WorkerSpec, host: str, port: int, workers: int) -> None:
        self._spec = spec
        self._host = host
        self._port = port
        self._count = workers
        self._workers: list[_Worker] = []
        self._stopping = False
        self._failed: _Worker | None = None
        self._listening = False
        self._next = itertools.cycle(range(workers))
        self._context = multiprocessing.get_context("spawn")
        self._selector = selectors.DefaultSelector()

    def run(self) -> int:
        """Serve until SIGINT or SIGTERM (exit code 0), or until a worker fails to start
        (``STARTUP_FAILURE``)."""
        listener = self._listen()
        wake_read, wake_write = socket.socketpair()
        wake_read.setblocking(False)
        wake_write.setblocking(False)
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        old_wakeup = signal.set_wakeup_fd(wake_write.fileno())
        try:
            self._workers = [self._start(i) for i in range(self._count)]
            self._selector.register(wake_read, selectors.EVENT_READ, "wake")
            started = time.monotonic()
            while not self._stopping:
                self._step(listener, wake_read)
                if not self._listening and self._ready(started):
                    # Not before: the first keep-alive clients would all stay on the first
                    # worker up. Until then connections wait in the listen backlog.
                    self._selector.register(listener, selectors.EVENT_READ, "accept")
                    self._listening = True
                    log.info("serving %s:%d on %d workers", self._host, self._port, self._count)
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._selector.close()
            listener.close()
            self._stop_workers()
            wake_read.close()
            wake_write.close()
        if self._failed is not None:
            log.error("worker %d failed to start (exit code %s)", self._failed.index,
                      self._failed.process.exitcode)  # fmt: skip
            return STARTUP_FAILURE
        return 0

    def _ready(self, started: float) -> bool:
        if all(w.serving for w in self._workers):
            return True
        waited = time.monotonic() - started
        return waited > READY_TIMEOUT_S and any(w.serving for w in self._workers)

    def _listen(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self._host, self._port))
        listener.listen(2048)
        listener.setblocking(False)
        return listener

    def _on_signal(self, _sig: int, _frame: FrameType | None) -> None:
        self._stopping = True

    def _step(self, listener: socket.socket, wake: socket.socket) -> None:
        for key, _events in self._selector.select(timeout=0.5):
            if key.data == "accept":
                self._accept_all(listener)
            elif key.data == "wake":
                with contextlib.suppress(BlockingIOError):
                    wake.recv(4096)
            else:
                self._read_reports(key.data)
        self._replace_dead()

    def _accept_all(self, listener: socket.socket) -> None:
        while True:
            try:
                connection, _address = listener.accept()
            except BlockingIOError:
                return
            except OSError as error:  # e.g. EMFILE: try again on the next wake-up
                log.warning("accept failed: %s", error)
                return
            with connection:
                self._hand_over(connection)

    def _hand_over(self, connection: socket.socket) -> None:
        alive = [w for w in self._workers if w.process.exitcode is None]
        # A worker starting in place of one that died takes connections once it serves.
        alive = [w for w in alive if w.serving] or alive
        if not alive:
            return  # closed unanswered: no worker is up
        start = next(self._next) % len(alive)
        first = least_loaded([w.load for w in alive], start)
        for worker in alive[first:] + alive[:first]:
            try:
                socket.send_fds(worker.control, [b"c"], [connection.fileno()])
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                continue  # that worker is not reading (busy or gone): the next one
            worker.sent += 1
            return
        log.warning("no worker took a connection; it was closed")

    def _read_reports(self, worker: _Worker) -> None:
        while True:
            try:
                message = worker.control.recv(REPORT.size)
            except BlockingIOError:
                return
            except OSError:
                message = b""
            if len(message) != REPORT.size:
                self._selector.unregister(worker.control)
                return  # the worker is gone; _replace_dead starts another
            worker.open, worker.received = REPORT.unpack(message)
            worker.serving = True

    def _start(self, index: int) -> _Worker:
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = self._context.Process(
            target=worker_main, args=(self._spec, child_end), name=f"worker-{index}"
        )
        process.start()
        child_end.close()
        parent_end.setblocking(False)
        worker = _Worker(index, process, parent_end)
        self._selector.register(parent_end, selectors.EVENT_READ, worker)
        return worker

    def _replace_dead(self) -> None:
        for position, worker in enumerate(self._workers):
            if worker.process.exitcode is None or self._stopping:
                continue
            if not worker.serving:
                # Restarting it would fail the same way (a bad setting, a busy database).
                self._failed = worker
                self._stopping = True
                return
            log.warning(
                "worker %d exited with %s; starting another", worker.index, worker.process.exitcode
            )
            self._close(worker)
            self._workers[position] = self._start(worker.index)

    def _close(self, worker: _Worker) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(worker.control)
        worker.control.close()

    def _stop_workers(self) -> None:
        for worker in self._workers:
            if worker.process.exitcode is None and worker.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in self._workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.exitcode is None:
                log.warning("worker %d did not stop in %.0f s; killed", worker.index, STOP_GRACE_S)
                worker.process.kill()
                worker.process.join()
            worker.control.close()


class HandedServer(uvicorn.Server):
    """A uvicorn server with no listening socket of its own: it serves the connections the
    parent sends over ``control`` and reports its open connections back."""

    def __init__(self, config: uvicorn.Config, control: socket.socket) -> None:
        super().__init__(config)
        self._control = control
        self._received = 0
        self._reported = (-1, -1)
        self._connecting: set[Any] = set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])
        loop = asyncio.get_running_loop()
        self._control.setblocking(False)
        loop.add_reader(self._control.fileno(), self._receive)

    def _protocol(self) -> Any:
        return self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )

    def _receive(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                message, fds, _flags, _address = socket.recv_fds(self._control, 16, 16)
            except BlockingIOError:
                return
            except OSError:
                message, fds = b"", []
            if not message and not fds:  # the parent is gone: stop like on SIGTERM
                loop.remove_reader(self._control.fileno())
                self.should_exit = True
                return
            for fd in fds:
                self._received += 1
                connection = socket.socket(fileno=fd)
                connection.setblocking(False)
                task = loop.create_task(loop.connect_accepted_socket(self._protocol, connection))
                self._connecting.add(task)
                task.add_done_callback(self._accepted)

    def _accepted(self, task: Any) -> None:
        self._connecting.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("a handed-over connection could not be served: %s", task.exception())

    async def on_tick(self, counter: int) -> bool:
        report = (len(self.server_state.connections), self._received)
        if report != self._reported:
            with contextlib.suppress(BlockingIOError, OSError):
                self._control.send(REPORT.pack(*report))
                self._reported = report
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(self._control.fileno())
        await super().shutdown(sockets=None)


def worker_main(spec: WorkerSpec, control: socket.socket) -> None:
    """A worker process (spawned): the app of ``spec`` on the connections it is handed."""
    config = uvicorn.Config(
        spec.app, factory=True, log_level=spec.log_level, access_log=False, lifespan="on"
    )
    HandedServer(config, control).run()
