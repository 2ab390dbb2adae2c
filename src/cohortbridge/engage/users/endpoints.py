"""The /users/* routes: parse, call one service function, answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.db.unit import Executor
from cohortbridge.engage.auth.service import Principal
from cohortbridge.engage.datapoints import service as datapoints
from cohortbridge.engage.http import run_app_endpoint, run_braze_endpoint
from cohortbridge.engage.users.schemas import (
    ExportIdsRequest,
    ExportIdsResponse,
    SessionRequest,
    TrackRequest,
    TrackResponse,
    body_schema,
    documented,
    documented_errors,
)
from cohortbridge.engage.users.service import export as export_service
from cohortbridge.engage.users.service import identity, sessions
from cohortbridge.engage.users.service import track as track_service

router = APIRouter(tags=["users"])


@router.post(
    "/users/track",
    summary="Record attributes, events and purchases",
    **documented(TrackRequest, TrackResponse, 201),
)
async def users_track(request: Request) -> Response:
    def write(ex: Executor, who: Principal, plan: Any) -> tuple[int, dict[str, Any]]:
        source = datapoints.users_track_source(who.key_name)
        return 201, track_service.apply(ex, who.workspace_id, plan, source)

    def draft(ex: Executor, who: Principal, plan: Any) -> Any:
        return track_service.draft(ex, who.workspace_id, plan)

    return await run_braze_endpoint(
        request,
        permission="users.track",
        limit_group="users_track",
        unit=write,
        prepare=track_service.prepare,
        draft=draft,
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


def _identity_route(
    permission: str, status: int, service: Callable[[AsyncConnection, str, Any], Awaitable[Any]]
) -> Callable[[Request], Awaitable[Response]]:
    """A route of the identity family: shared rate limit, one service call, a fixed status."""

    async def route(request: Request) -> Response:
        async def handle(
            conn: AsyncConnection, who: Principal, body: Any
        ) -> tuple[int, dict[str, Any]]:
            return status, await service(conn, who.workspace_id, body)

        return await run_braze_endpoint(
            request, permission=permission, limit_group="users_identity", handler=handle
        )

    return route


for _path, _permission, _status, _service, _summary in (
    ("/users/alias/new", "users.alias.new", 201, identity.new_aliases, "Add user aliases"),
    ("/users/alias/update", "users.alias.update", 201, identity.update_aliases,
     "Rename user aliases"),
    ("/users/identify", "users.identify", 201, identity.identify,
     "Identify alias-only, email-only or phone-only users"),
    ("/users/merge", "users.merge", 202, identity.merge, "Merge one profile into another"),
    ("/users/delete", "users.delete", 202, identity.delete, "Delete profiles"),
):  # fmt: skip
    router.add_api_route(
        _path,
        _identity_route(_permission, _status, _service),
        methods=["POST"],
        summary=_summary,
        status_code=_status,
        responses=documented_errors(),
    )


@router.post(
    "/sdk/sessions",
    summary="Report an app session on a device (our SDK-style endpoint)",
    status_code=201,
    responses=documented_errors(),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": body_schema(SessionRequest)}},
        }
    },
)
async def sdk_session(request: Request) -> Response:
    """A new device gets an anonymous profile; ``external_id`` identifies the device's user as
    Braze's ``changeUser`` does (docs/api.md)."""
    return await run_app_endpoint(request, sessions.record, prepare=sessions.prepare)
