"""``POST /2/httpapi``, ``POST /batch`` and ``POST /identify`` (spec amplitude §1–§2)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.http import (
    PAYLOAD_TOO_LARGE,
    AmplitudeError,
    error_response,
    in_transaction,
    json_response,
    read_body,
    state_of,
)
from cohortbridge.analytics.ingest import service
from cohortbridge.analytics.ingest.logic.events import (
    DEFAULT_MIN_ID_LENGTH,
    Event,
    check_events,
    min_id_length_of,
)
from cohortbridge.analytics.ingest.logic.identify import identifications
from cohortbridge.analytics.ingest.schemas import documented
from cohortbridge.analytics.projects import service as projects
from cohortbridge.db.engine import Database
from cohortbridge.kit.clock import utcnow

router = APIRouter(tags=["ingestion"])


def _missing(field: str) -> AmplitudeError:
    return AmplitudeError(400, "Request missing required field", missing_field=field)


def _payload(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise AmplitudeError(400, "Missing request body")
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise AmplitudeError(400, "Invalid JSON request body") from error
    if not isinstance(payload, dict):
        raise AmplitudeError(400, "Invalid JSON request body")
    return payload


async def _project(db: Database, api_key: Any) -> projects.Project:
    if not isinstance(api_key, str) or not api_key:
        raise _missing("api_key")
    if "\x00" in api_key:  # no key has one, and PostgreSQL could not even look it up
        raise AmplitudeError(400, f"Invalid API key: {api_key}")
    async with db.read() as conn:
        project = await projects.by_api_key(conn, api_key)
    if project is None:
        raise AmplitudeError(400, f"Invalid API key: {api_key}")
    return project


async def _upload(request: Request, *, batch: bool) -> Response:
    state = state_of(request)
    settings = state.settings
    limit = settings.ingest_max_batch_bytes if batch else settings.ingest_max_http_bytes
    try:
        raw = await read_body(request, limit)
        payload = _payload(raw)
        project = await _project(state.db, payload.get("api_key"))
        if not isinstance(payload.get("events"), list):
            raise _missing("events")
        if len(payload["events"]) > settings.ingest_max_events:
            raise AmplitudeError(413, PAYLOAD_TOO_LARGE)
        # U+0000 can only arrive escaped: without the escape, no value needs the walk.
        events = _valid_events(payload, nul_possible=b"\\u0000" in raw)
        eps = settings.ingest_eps_batch if batch else settings.ingest_eps_http
        verdict = state.throttle.check(
            project.id, events, eps=eps, daily_quota=settings.ingest_daily_quota
        )
        if verdict is not None:
            return json_response(429, verdict.body(batch=batch))
        received = utcnow()

        async def work(conn: AsyncConnection) -> int:
            return await service.ingest(conn, service.Batch(project.id, events, received))

        await in_transaction(state.db, work)
    except AmplitudeError as error:
        return error_response(error)
    return json_response(200, {
        "code": 200, "events_ingested": len(events), "payload_size_bytes": len(raw),
        "server_upload_time": int(received.timestamp() * 1000),
    })  # fmt: skip


def _valid_events(payload: dict[str, Any], *, nul_possible: bool) -> list[Event]:
    min_length = min_id_length_of(payload.get("options"))
    events, problems = check_events(
        payload["events"],
        min_id_length=DEFAULT_MIN_ID_LENGTH if min_length in (None, -1) else min_length,
        now=utcnow(),
        nul_possible=nul_possible,
    )
    if problems:
        raise AmplitudeError.of(problems.body())
    return events


@router.post("/2/httpapi", summary="Upload events (HTTP V2 API)", **documented())
async def http_api(request: Request) -> Response:
    return await _upload(request, batch=False)


@router.post("/batch", summary="Upload events in bulk (Batch Event Upload API)", **documented())
async def batch_api(request: Request) -> Response:
    return await _upload(request, batch=True)


async def _form(request: Request) -> dict[str, str]:
    """The Identify API's parameters: form-encoded body (or multipart), else the query."""
    params = {k: v for k, v in request.query_params.items()}
    content_type = request.headers.get("content-type", "")
    if request.method == "POST" and content_type.startswith("multipart/form-data"):
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    elif request.method == "POST":
        raw = await read_body(request, state_of(request).settings.ingest_max_http_bytes)
        parsed = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        params.update({k: v[-1] for k, v in parsed.items()})
    return params


async def identify_api(request: Request) -> Response:
    state = state_of(request)
    try:
        params = await _form(request)
        project = await _project(state.db, params.get("api_key"))
        try:
            raw = orjson.loads(params.get("identification") or "")
        except orjson.JSONDecodeError as error:
            raise AmplitudeError(400, "missing_event", missing_field="identification") from error
        events, problems = identifications(raw, min_id_length=DEFAULT_MIN_ID_LENGTH, now=utcnow())
        if problems:
            raise AmplitudeError.of(problems.body())
        batch = service.Batch(project.id, events, utcnow(), store_events=False)

        async def work(conn: AsyncConnection) -> int:
            return await service.ingest(conn, batch)

        await in_transaction(state.db, work)
    except AmplitudeError as error:
        return error_response(error)
    return PlainTextResponse("success")


for _method in ("POST", "GET"):
    router.add_api_route(
        "/identify", identify_api, methods=[_method], operation_id=f"identify_{_method.lower()}",
        summary="Set user properties without sending an event (Identify API)",
    )  # fmt: skip
