"""Segment routes: Braze's ``/segments/list`` and ``/segments/details``, our definition API,
``POST /users/export/segment`` and the download of its files."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.engage.auth.service import Principal
from cohortbridge.engage.errors import BrazeError
from cohortbridge.engage.http import json_response, run_braze_endpoint, state_of
from cohortbridge.engage.segments import schemas
from cohortbridge.engage.segments.service import definitions, exports
from cohortbridge.engage.users.schemas import documented, documented_errors

router = APIRouter(tags=["segments"])
Service = Callable[[AsyncConnection, str, Any], Awaitable[dict[str, Any]]]


def _handler(service: Service, status: int) -> Any:
    async def handle(
        conn: AsyncConnection, who: Principal, body: Any
    ) -> tuple[int, dict[str, Any]]:
        return status, await service(conn, who.workspace_id, body)

    return handle


@router.post("/segments/create", summary="Define a segment (ours)",
             **documented(schemas.SegmentCreate, schemas.SegmentWritten, 201))  # fmt: skip
async def create_segment(request: Request) -> Response:
    return await run_braze_endpoint(
        request, permission="segments.create", limit_group="segments",
        handler=_handler(definitions.create, 201), prepare=definitions.prepare_create,
    )  # fmt: skip


@router.post("/segments/update", summary="Change a segment's name, filter or tags (ours)",
             **documented(schemas.SegmentUpdate, schemas.SegmentWritten, 200))  # fmt: skip
async def update_segment(request: Request) -> Response:
    return await run_braze_endpoint(
        request, permission="segments.update", limit_group="segments",
        handler=_handler(definitions.update, 200), prepare=definitions.prepare_update,
    )  # fmt: skip


@router.post("/segments/archive", summary="Archive a segment (ours)",
             **documented(schemas.SegmentRef, schemas.SegmentWritten, 200))  # fmt: skip
async def archive_segment(request: Request) -> Response:
    return await run_braze_endpoint(
        request, permission="segments.archive", limit_group="segments",
        handler=_handler(definitions.archive, 200),
    )  # fmt: skip


def _read_route(service: Service, permission: str) -> Callable[[Request], Awaitable[Response]]:
    async def route(request: Request) -> Response:
        return await run_braze_endpoint(
            request, permission=permission, limit_group="segments",
            handler=_handler(service, 200), read_only=True,
        )  # fmt: skip

    return route


for _path, _service, _permission, _model, _summary in (
    ("/segments/list", definitions.list_page, "segments.list", schemas.SegmentList,
     "List segments (Braze), 100 a page"),
    ("/segments/details", definitions.details, "segments.details", schemas.SegmentDetails,
     "A segment's details (Braze), with its filters in words"),
    ("/segments/get", definitions.get, "segments.details", schemas.SegmentGot,
     "A segment's definition (ours)"),
    ("/segments/size", definitions.size, "segments.details", schemas.SegmentSize,
     "How many users a segment holds now (ours)"),
):  # fmt: skip
    router.add_api_route(
        _path,
        _read_route(_service, _permission),
        methods=["GET"],
        summary=_summary,
        responses={200: {"model": _model, "description": "success"}, **documented_errors()},
    )


@router.post(
    "/users/export/segment",
    summary="Export a segment's users to a zip file",
    **documented(schemas.ExportSegmentRequest, schemas.ExportSegmentResponse, 201),
)
async def export_segment(request: Request) -> Response:
    state = state_of(request)
    base_url = state.settings.public_url("engage")
    started: list[str] = []

    async def handle(
        conn: AsyncConnection, who: Principal, body: Any
    ) -> tuple[int, dict[str, Any]]:
        export_id, answer = await exports.start(conn, who.workspace_id, body, base_url)
        started.append(export_id)
        return 201, answer

    response = await run_braze_endpoint(
        request, permission="users.export.segment", limit_group="users_export_segment",
        handler=handle, prepare=exports.prepare,
    )  # fmt: skip
    if response.status_code == 201 and started:
        # The last attempt is the one that committed (run_transaction retries lost races).
        ttl = timedelta(seconds=state.settings.export_url_ttl_s)
        exports.remove_expired(state.settings.exports_dir, ttl)
        job = exports.run(state.db, started[-1], exports_dir=state.settings.exports_dir,
                          base_url=base_url)  # fmt: skip
        state.background.spawn(f"segments.export:{started[-1]}", job)
    return response


@router.get(
    "/exports/segments/{name}",
    summary="Download a segment export (the url /users/export/segment returned)",
    responses={
        200: {"content": {"application/zip": {}}, "description": "the zip file"},
        404: {"model": schemas.Message, "description": "unknown, not ready or expired"},
    },
)
async def download_export(request: Request, name: str) -> Response:
    """Works like a pre-signed link: the unguessable object prefix is the key."""
    state = state_of(request)
    ttl = timedelta(seconds=state.settings.export_url_ttl_s)
    try:
        async with state.db.read() as conn:
            path = await exports.downloadable(
                conn, state.settings.exports_dir, name.removesuffix(".zip"), ttl
            )
    except BrazeError as error:
        return json_response(error.status, error.body())
    return FileResponse(path, media_type="application/zip", filename=name)
