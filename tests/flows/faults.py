"""A fault-injecting HTTP proxy on loopback: forwards to a real server, but answers some
requests itself (an error status, or a stall past the client's timeout) as a scheduled list
says. What lies between analytics and engage in production, made to misbehave."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import LiveServer


class FaultyProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        # An int status, "stall", "lose" (forward, then answer 503: engage applied a request
        # whose response was lost), or None to pass through.
        self.faults: deque[Any] = deque()
        self.forwarded = 0
        self.failed = 0
        self.lost = 0
        self.down = False  # every request fails with 503 until set back
        self.stall_s = 2.0
        self.delay_s = 0.0  # added before forwarding each request
        app = Starlette(routes=[Route("/{path:path}", self.handle, methods=["POST", "GET"])])
        self.server = LiveServer(app)

    async def handle(self, request: Request) -> Response:
        fault = self.faults.popleft() if self.faults else None
        if self.down or (fault is not None and fault != "lose"):
            self.failed += 1
            if fault == "stall":
                await asyncio.sleep(self.stall_s)
            status = 503 if self.down or fault in ("stall", None) else int(fault)
            return JSONResponse({"message": "injected"}, status_code=status)
        body = await request.body()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        async with httpx.AsyncClient(base_url=self.upstream, timeout=30) as client:
            headers = {"content-type": request.headers.get("content-type", "")}
            if "authorization" in request.headers:
                headers["authorization"] = request.headers["authorization"]
            answer = await client.request(request.method, request.url.path, content=body,
                                          headers=headers)  # fmt: skip
        self.forwarded += 1
        if fault == "lose":
            self.lost += 1
            return JSONResponse({"message": "injected after forwarding"}, status_code=503)
        return Response(answer.content, status_code=answer.status_code,
                        media_type=answer.headers.get("content-type"))  # fmt: skip

    @property
    def url(self) -> str:
        return self.server.url

    def __enter__(self) -> FaultyProxy:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)
