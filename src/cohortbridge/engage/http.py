"""The shared shape of engage's REST endpoints.

Braze reads the body as raw JSON, checks the key, counts the request against the workspace's
limit and answers ``{"message": …}`` on failure. ``run_braze_endpoint`` does exactly that around
one service call, so endpoint functions stay a line or two and every response carries the
``X-RateLimit-*`` headers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.config import Settings
from cohortbridge.db.engine import Database
from cohortbridge.db.unit import Executor, Unit, call
from cohortbridge.engage.auth.service import Principal, authenticate, record_use
from cohortbridge.engage.errors import INVALID_API_KEY, BrazeError, RetryTransaction
from cohortbridge.engage.partners.service import PartnerClient
from cohortbridge.engage.partners.service import authenticate as partner_auth
from cohortbridge.engage.partners.service import record_use as record_partner_use
from cohortbridge.engage.workspaces.repository import workspace_of_app
from cohortbridge.jobs.background import Background
from cohortbridge.kit.ratelimit import FixedWindowLimiter

Handler = Callable[[AsyncConnection, Principal, Any], Awaitable[tuple[int, dict[str, Any]]]]
# A write handler as a synchronous unit of work (db/unit.py): the hot write paths.
UnitHandler = Callable[[Executor, Principal, Any], tuple[int, dict[str, Any]]]
# Reads and computes ahead of a unit, outside its transaction (run_braze_endpoint).
DraftHandler = Callable[[Executor, Principal, Any], Any]


@dataclass
class EngageState:
    settings: Settings
    db: Database
    limiter: FixedWindowLimiter
    background: Background = field(default_factory=Background)


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
    if b"\\u0000" in raw:
        # NUL cannot be stored in PostgreSQL text or JSON: refuse the request whole rather than
        # fail half-way in the database.
        return UNPARSABLE
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
    handler: Handler | None = None,
    unit: UnitHandler | None = None,
    read_only: bool = False,
    prepare: Callable[[dict[str, Any]], Any] | None = None,
    draft: DraftHandler | None = None,
) -> Response:
    """Read, authenticate, count, then ``prepare`` the body (validation that needs no
    database) and hand the result to ``handler`` inside one transaction — or to ``unit``,
    run as one synchronous unit of work (``Database.write``).

    ``draft`` (with ``unit``): where the database has a single writer (SQLite), a read-only
    step run before the write on what ``prepare`` returned; ``unit`` gets its result.
    """
    state = state_of(request)
    headers: dict[str, str] = {}
    try:
        payload: Any = (
            dict(request.query_params)
            if request.method == "GET"
            else await read_json(request, state.settings.max_body_bytes)
        )
        api_key = api_key_of(request, payload)
        principal = await state.db.lookup(lambda ex: authenticate(ex, api_key, permission))
        headers = _count_request(state, principal.workspace_id, limit_group)
        if payload is UNPARSABLE or not isinstance(payload, dict):
            raise BrazeError(400, "Bad Request")
        payload.pop("api_key", None)
        if unit is not None:
            # No write turn: a unit of work never awaits between its statements, so other
            # requests' validation cannot keep the writer waiting mid-transaction.
            prepared = prepare(payload) if prepare is not None else payload
            if draft is not None and state.db.single_writer:
                # Its reads and Python run while another request may hold the writer.
                prepared = await state.db.lookup(_drafting(principal, draft, prepared))
            status, body = await run_unit(state.db, _recording_use(principal, unit, prepared))
            return json_response(status, body, headers)
        if read_only and principal.stale_last_seen:
            # At most once a minute per key: a read-only request still marks its key as seen.
            async with state.db.transaction() as conn:
                await call(conn, record_use, principal)
        if handler is None:
            raise TypeError("run_braze_endpoint needs a handler or a unit")
        turn = contextlib.nullcontext() if read_only else state.db.write_turn()
        async with turn:
            prepared = prepare(payload) if prepare is not None else payload

            async def work(conn: AsyncConnection) -> tuple[int, dict[str, Any]]:
                if not read_only:
                    await call(conn, record_use, principal)
                return await handler(conn, principal, prepared)

            status, body = await run_transaction(state.db, work, read_only=read_only)
    except BrazeError as error:
        return json_response(error.status, error.body(), {**headers, **error.headers})
    return json_response(status, body, headers)


def _recording_use(
    principal: Principal, unit: UnitHandler, prepared: Any
) -> Unit[tuple[int, dict[str, Any]]]:
    def work(ex: Executor) -> tuple[int, dict[str, Any]]:
        record_use(ex, principal)
        return unit(ex, principal, prepared)

    return work


def _drafting(principal: Principal, draft: DraftHandler, prepared: Any) -> Unit[Any]:
    def work(ex: Executor) -> Any:
        return draft(ex, principal, prepared)

    return work


def _count_request(state: EngageState, workspace_id: str, group: str) -> dict[str, str]:
    """Count the request against the workspace's limit: its headers, or 429."""
    limit, window = _limit_for(state.settings, group)
    verdict = state.limiter.hit(workspace_id, group, limit, window)
    if not verdict.allowed:
        raise BrazeError(429, "Rate Limited", headers=verdict.headers())
    return verdict.headers()


PartnerHandler = Callable[[Executor, PartnerClient, Any, float], dict[str, Any]]


async def run_partner_endpoint(
    request: Request,
    partner: str,
    handler: PartnerHandler,
    prepare: Callable[[dict[str, Any]], Any],
) -> Response:
    """A partner cohort endpoint: both keys in the body, checked before anything else in it
    (spec braze §1.3, §1.5); 201 on success; 423 when the cohort stays locked too long."""
    state = state_of(request)
    headers: dict[str, str] = {}
    try:
        payload = await read_json(request, state.settings.max_body_bytes)
        if payload is UNPARSABLE or not isinstance(payload, dict):
            raise BrazeError(400, "Bad Request")
        keys = payload.get("partner_api_key"), payload.get("client_secret")
        client = await state.db.lookup(lambda ex: partner_auth(ex, partner, *keys))
        headers = _count_request(state, client.workspace_id, "cohort_import")
        bound = state.settings.cohort_lock_timeout_s
        prepared = prepare(payload)

        def work(ex: Executor) -> tuple[int, dict[str, Any]]:
            record_partner_use(ex, client)
            return 201, handler(ex, client, prepared, bound)

        # Waiting past the bound for the writer (or a row lock) answers 423 (run_unit).
        # Most of a cohort change is SQLite's own work (one INSERT … SELECT per 900 ids): it
        # runs on the writer thread, while the loop reads and validates the next requests.
        status, body = await run_unit(state.db, work, acquire_timeout=bound, offload=True)
    except BrazeError as error:
        return json_response(error.status, error.body(), {**headers, **error.headers})
    return json_response(status, body, headers)


AppHandler = Callable[[AsyncConnection, str, Any], Awaitable[dict[str, Any]]]


async def run_app_endpoint(
    request: Request, handler: AppHandler, prepare: Callable[[dict[str, Any]], Any]
) -> Response:
    """An endpoint for apps (SDK traffic): the public app identifier names the workspace, as
    Braze's SDKs send it; no REST key is involved."""
    state = state_of(request)
    headers: dict[str, str] = {}
    try:
        payload = await read_json(request, state.settings.max_body_bytes)
        if payload is UNPARSABLE or not isinstance(payload, dict):
            raise BrazeError(400, "Bad Request")
        app_id = payload.get("app_id")
        async with state.db.read() as conn:
            workspace_id = await workspace_of_app(conn, app_id) if isinstance(app_id, str) else None
        if workspace_id is None:
            raise BrazeError(401, INVALID_API_KEY)
        headers = _count_request(state, workspace_id, "sdk")
        async with state.db.write_turn():
            prepared = prepare(payload)

            async def work(conn: AsyncConnection) -> tuple[int, dict[str, Any]]:
                return 201, await handler(conn, workspace_id, prepared)

            status, body = await run_transaction(state.db, work)
    except BrazeError as error:
        return json_response(error.status, error.body(), {**headers, **error.headers})
    return json_response(status, body, headers)


# PostgreSQL's serialization failure and deadlock: the transaction is safe to run again.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
LOCK_NOT_AVAILABLE = "55P03"
INVALID_REGULAR_EXPRESSION = "2201B"
ATTEMPTS = 3
Work = Callable[[AsyncConnection], Awaitable[tuple[int, dict[str, Any]]]]


def _sqlstate(error: DBAPIError) -> str | None:
    return getattr(error.orig, "sqlstate", None)


async def run_transaction(
    db: Database, work: Work, *, read_only: bool = False, acquire_timeout: float | None = None
) -> tuple[int, dict[str, Any]]:
    """Run ``work`` in one transaction, again after a lost race (up to three times).

    Waiting past ``acquire_timeout`` for the writer or for a row lock answers 423.
    """

    async def once() -> tuple[int, dict[str, Any]]:
        transaction = db.read() if read_only else db.transaction(acquire_timeout)
        async with transaction as conn:
            return await work(conn)

    return await _with_retries(once)


async def run_unit(
    db: Database,
    unit: Unit[tuple[int, dict[str, Any]]],
    acquire_timeout: float | None = None,
    *,
    offload: bool = False,
) -> tuple[int, dict[str, Any]]:
    """``run_transaction`` for a synchronous unit of work (``Database.write``)."""
    return await _with_retries(lambda: db.write(unit, acquire_timeout, offload=offload))


async def _with_retries(
    once: Callable[[], Awaitable[tuple[int, dict[str, Any]]]],
) -> tuple[int, dict[str, Any]]:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await once()
        except RetryTransaction as error:
            if attempt == ATTEMPTS:
                # Lost the same race three times: tell the client to retry later, as Braze's
                # 5XX responses do, instead of failing with a 500.
                raise BrazeError(503, "Service Unavailable") from error
        except TimeoutError as error:
            raise BrazeError(423, "Resource locked") from error
        except DBAPIError as error:
            if _sqlstate(error) == LOCK_NOT_AVAILABLE:
                raise BrazeError(423, "Resource locked") from error
            if _sqlstate(error) == INVALID_REGULAR_EXPRESSION:
                # A segment's regex that Python accepted but PostgreSQL's engine does not.
                raise BrazeError(
                    400, "Invalid filter: a regular expression is not valid"
                ) from error
            if attempt == ATTEMPTS or _sqlstate(error) not in RETRYABLE_SQLSTATES:
                raise
    raise AssertionError("unreachable")
