"""The shared shape of analytics' Amplitude endpoints: JSON bodies that always carry ``code``
(the SDKs read the status from the body, spec amplitude §1.6), bounded request bodies, and one
transaction per request, run again after a lost race."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.ingest.throttle import Throttle
from cohortbridge.analytics.projects import service as projects
from cohortbridge.config import Settings
from cohortbridge.db.engine import Database
from cohortbridge.jobs.background import Background

T = TypeVar("T")


@dataclass
class AnalyticsState:
    settings: Settings
    db: Database
    throttle: Throttle
    background: Background = field(default_factory=Background)


def state_of(request: Request) -> AnalyticsState:
    state: AnalyticsState = request.app.state.analytics
    return state


ATTEMPTS = 3
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


class AmplitudeError(Exception):
    """An expected failure, answered as ``{"code": status, "error": …, **extra}``."""

    def __init__(self, status: int, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.status = status
        self.body: dict[str, Any] = {"code": status, "error": error, **extra}

    @classmethod
    def of(cls, body: dict[str, Any]) -> AmplitudeError:
        """An error whose body is already built (the index maps of invalid events)."""
        error = cls(int(body["code"]), str(body["error"]))
        error.body = body
        return error


def json_response(status: int, body: Any) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def error_response(error: AmplitudeError) -> Response:
    return json_response(error.status, error.body)


PAYLOAD_TOO_LARGE = "Payload too large"


async def read_body(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise AmplitudeError(413, PAYLOAD_TOO_LARGE)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > max_bytes:
            raise AmplitudeError(413, PAYLOAD_TOO_LARGE)
    return bytes(raw)


def _lost_race(error: DBAPIError) -> bool:
    if isinstance(error, IntegrityError):
        return True  # a user id or device created by a concurrent request
    return getattr(error.orig, "sqlstate", None) in RETRYABLE_SQLSTATES


async def in_transaction(db: Database, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run ``work`` in one write transaction, again after a lost race (three times at most)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with db.write_turn(), db.transaction() as conn:
                return await work(conn)
        except DBAPIError as error:
            if attempt == ATTEMPTS or not _lost_race(error):
                if _lost_race(error):
                    # 503: "internal failure, retry is safe (no duplication)".
                    raise AmplitudeError(503, "Service Unavailable") from error
                raise
    raise AssertionError("unreachable")


class DashboardError(Exception):
    """An error of the dashboard-style REST APIs (cohorts, computations), answered as
    Amplitude's ``{"error": {"http_code", "type", "message", "metadata"}}``."""

    def __init__(self, status: int, kind: str, message: str, **metadata: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"http_code": status, "type": kind, "message": message,
                               "metadata": metadata or {}}}  # fmt: skip


UNAUTHORIZED = "Invalid API credentials: use Basic api_key:secret_key"


def basic_credentials(request: Request) -> tuple[str, str]:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        raise DashboardError(401, "unauthorized", UNAUTHORIZED)
    try:
        api_key, _, secret = base64.b64decode(token, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise DashboardError(401, "unauthorized", UNAUTHORIZED) from None
    return api_key, secret


async def project_of(request: Request) -> int:
    """The project of Basic ``api_key:secret_key`` credentials, or 401."""
    api_key, secret = basic_credentials(request)
    async with state_of(request).db.read() as conn:
        project = await projects.by_credentials(conn, api_key, secret)
    if project is None:
        raise DashboardError(401, "unauthorized", UNAUTHORIZED)
    return project.id


async def read_json(request: Request) -> Any:
    raw = await read_body(request, state_of(request).settings.ingest_max_batch_bytes)
    try:
        return orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError:
        raise DashboardError(400, "invalid_request", "The body is not valid JSON") from None


DashboardWork = Callable[[AsyncConnection, int, Any], Awaitable[tuple[int, Any]]]
Authenticate = Callable[[Request], Awaitable[int]]


async def dashboard_answer(
    request: Request, authenticate: Authenticate, work: DashboardWork, *, write: bool,
    body: bool = False,
) -> Response:  # fmt: skip
    """Authenticate, read the JSON body (when ``body``), run ``work`` in one transaction (a
    write one when ``write``; it may run again after a lost race), answer."""
    try:
        project_id = await authenticate(request)
        payload = await read_json(request) if body else None
        db = state_of(request).db
        if write:
            status, answer = await in_transaction(db, lambda conn: work(conn, project_id, payload))
        else:
            async with db.read() as conn:
                status, answer = await work(conn, project_id, payload)
    except DashboardError as error:
        return json_response(error.status, error.body)
    return json_response(status, answer)
