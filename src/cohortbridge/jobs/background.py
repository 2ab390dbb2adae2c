"""Fire-and-forget work started by a request, run on the serving process's event loop.

Durable state lives in the domain's tables (a job re-reads it and is safe to run twice), so a
task lost with its process is found stale and taken over by the next request; this class only
keeps tasks referenced, logs their failures and cancels them when the app shuts down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger("cohortbridge.jobs")


class Background:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, name: str, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def drain(self, timeout_s: float | None = None) -> None:
        """Wait for the running tasks (tests, and a graceful shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    async def aclose(self) -> None:
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def periodically(
    interval_s: float, work: Callable[[], Awaitable[Any]], name: str = "periodic"
) -> None:
    """Run ``work`` now and then every ``interval_s`` until cancelled; a failure is logged and
    the next round still runs."""
    while True:
        try:
            await work()
        except Exception:
            log.exception("%s failed; trying again in %.0f s", name, interval_s)
        await asyncio.sleep(interval_s)
