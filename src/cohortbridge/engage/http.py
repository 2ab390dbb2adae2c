"""The shared shape of engage's REST endpoints.

Braze reads the body as raw JSON, checks the key, counts the request against the workspace's
limit and answers ``{"message": …}`` on failure. ``run_braze_endpoint`` does exactly that around
one service call, so endpoint functions stay a line or two and every response carries the
``X-RateLimit-*`` headers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.config import Settings
from cohortbridge.db.engine import Database
from cohortbridge.engage.auth.service import Principal, authenticate, record_use
from cohortbridge.engage.errors import BrazeError, RetryTransaction
from cohortbridge.kit.ratelimit import FixedWindowLimiter

Handler = Callable[[AsyncConnection, Principal, Any], Awaitable[tuple[int, dict[str, Any]]]]


@dataclass
class EngageState:
    settings: Settings
    db: Database
    limiter: FixedWindowLimiter


def state_of(request: Request) -> EngageState:
    state: EngageState = request.app.state.engage
    return state


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        content=orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


class _Unparsable:
    """Marker for a body that is not JSON (reported after authentication, as Braze does)."""


UNPARSABLE = _Unparsable()


async def read_json(request: Request, max_bytes: int) -> Any:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise BrazeError(413, "Request Entity Too Large")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > max_bytes:
            raise BrazeError(413, "Request Entity Too Large")
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return UNPARSABLE


def api_key_of(request: Request, payload: Any) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    # Deprecated by Braze in 2020 but still accepted (spec braze §3.1).
    if request.query_params.get("api_key"):
        return request.query_params["api_key"]
    if isinstance(payload, dict) and isinstance(payload.get("api_key"), str):
        return str(payload["api_key"])
    return None


def _limit_for(settings: Settings, group: str) -> tuple[int, int]:
    limits = settings.rate_limits
    return (
        int(getattr(limits, group, limits.default)),
        int(getattr(limits, f"{group}_window", limits.default_window)),
    )


async def run_braze_endpoint(
    request: Request,
    *,
    permission: str,
    limit_group: str,
    handler: Handler,
    read_only: bool = False,
) -> Response:
    state = state_of(request)
    headers: dict[str, str] = {}
    try:
        payload = await read_json(request, state.settings.max_body_bytes)
        async with state.db.read() as conn:
            principal = await authenticate(conn, api_key_of(request, payload), permission)
        limit, window = _limit_for(state.settings, limit_group)
        verdict = state.limiter.hit(principal.workspace_id, limit_group, limit, window)
        headers = verdict.headers()
        if not verdict.allowed:
            raise BrazeError(429, "Rate Limited")
        if payload is UNPARSABLE or not isinstance(payload, dict):
            raise BrazeError(400, "Bad Request")
        payload.pop("api_key", None)
        status, body = await _run_with_retries(state.db, principal, payload, handler, read_only)
    except BrazeError as error:
        return json_response(error.status, error.body(), {**headers, **error.headers})
    return json_response(status, body, headers)


# PostgreSQL's serialization failure and deadlock: the transaction is safe to run again.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
ATTEMPTS = 3


def _retryable(error: DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) in RETRYABLE_SQLSTATES


async def _run_with_retries(
    db: Database, principal: Principal, payload: Any, handler: Handler, read_only: bool
) -> tuple[int, dict[str, Any]]:
    if read_only and principal.stale_last_seen:
        # At most once a minute per key: a read-only request still marks its key as seen.
        async with db.transaction() as conn:
            await record_use(conn, principal)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            transaction = db.read() if read_only else db.transaction()
            async with transaction as conn:
                if not read_only:
                    await record_use(conn, principal)
                return await handler(conn, principal, payload)
        except RetryTransaction as error:
            if attempt == ATTEMPTS:
                # Lost the same race three times: tell the client to retry later, as Braze's
                # 5XX responses do, instead of failing with a 500.
                raise BrazeError(503, "Service Unavailable") from error
        except DBAPIError as error:
            if attempt == ATTEMPTS or not _retryable(error):
                raise
    raise AssertionError("unreachable")
