"""An ASGI app for the balancer's tests: the first worker process to start serves at once,
every other one only after ``SLOW_START_S`` (its lifespan startup waits)."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

SLOW_START_S = 3.0
_held: list[int] = []  # the first worker keeps its lock for its lifetime


def app() -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        fd = os.open(os.environ["SLOW_START_LOCK"], os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _held.append(fd)
        except BlockingIOError:
            os.close(fd)
            await asyncio.sleep(SLOW_START_S)
        yield

    made = FastAPI(lifespan=lifespan)

    @made.get("/")
    async def root() -> dict[str, int]:
        return {"pid": os.getpid()}

    return made
