"""Fixtures for segment exports: a real HTTP receiver on loopback for ``callback_endpoint``."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest


class CallbackReceiver:
    """Records the JSON bodies POSTed to it, as a customer's callback endpoint would."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length))
                self.send_response(200)
                self.end_headers()
                with receiver.arrived:
                    receiver.bodies.append(body)
                    receiver.arrived.notify_all()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/done"

    def _wait(self, count: int, timeout_s: float) -> list[Any]:
        deadline = time.monotonic() + timeout_s
        with self.arrived:
            while len(self.bodies) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.bodies)} of {count} callbacks arrived")
                self.arrived.wait(left)
            return list(self.bodies)

    async def wait(self, count: int = 1, timeout_s: float = 30) -> list[Any]:
        # Poll, so the event loop running the export job is never blocked by the wait.
        deadline = time.monotonic() + timeout_s
        while len(self.bodies) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.bodies)} of {count} callbacks arrived")
            await asyncio.sleep(0.02)
        return self._wait(count, 1)


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    found = CallbackReceiver()
    found.thread.start()
    yield found
    found.server.shutdown()
    found.server.server_close()


async def download(engage: httpx.AsyncClient, url: str, timeout_s: float = 30) -> list[Any]:
    """The user objects of an export, once its file is there (polling the returned URL)."""
    path = httpx.URL(url).path
    deadline = time.monotonic() + timeout_s
    while True:
        response = await engage.get(path)
        if response.status_code == 200:
            break
        assert "not ready" in response.json()["message"], response.text
        assert time.monotonic() < deadline, "the export did not finish"
        await asyncio.sleep(0.02)
    assert response.headers["content-type"] == "application/zip"
    users: list[Any] = []
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        for name in sorted(archive.namelist()):
            users += [json.loads(line) for line in archive.read(name).splitlines() if line]
    return users
