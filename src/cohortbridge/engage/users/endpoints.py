"""The /users/* routes: parse, call one service function, answer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.engage.auth.service import Principal
from cohortbridge.engage.http import run_braze_endpoint
from cohortbridge.engage.users.schemas import (
    ExportIdsRequest,
    ExportIdsResponse,
    TrackRequest,
    TrackResponse,
    documented,
)
from cohortbridge.engage.users.service import export as export_service
from cohortbridge.engage.users.service import track as track_service

router = APIRouter(tags=["users"])


@router.post(
    "/users/track",
    summary="Record attributes, events and purchases",
    **documented(TrackRequest, TrackResponse, 201),
)
async def users_track(request: Request) -> Response:
    async def handle(
        conn: AsyncConnection, who: Principal, body: Any
    ) -> tuple[int, dict[str, Any]]:
        return 201, await track_service.track(conn, who.workspace_id, body)

    return await run_braze_endpoint(
        request, permission="users.track", limit_group="users_track", handler=handle
    )


@router.post(
    "/users/export/ids",
    summary="Export profiles by identifier",
    **documented(ExportIdsRequest, ExportIdsResponse, 201),
)
async def users_export_ids(request: Request) -> Response:
    async def handle(
        conn: AsyncConnection, who: Principal, body: Any
    ) -> tuple[int, dict[str, Any]]:
        return 201, await export_service.export_ids(conn, who.workspace_id, body)

    return await run_braze_endpoint(
        request,
        permission="users.export.ids",
        limit_group="users_export_ids",
        handler=handle,
        read_only=True,
    )
