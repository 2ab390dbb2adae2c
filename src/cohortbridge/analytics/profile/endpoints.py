"""``GET /v1/userprofile`` with ``Authorization: Api-Key <secret key>`` (spec amplitude §5)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from cohortbridge.analytics.http import json_response, state_of
from cohortbridge.analytics.profile import service
from cohortbridge.analytics.projects import service as projects

router = APIRouter(tags=["user profile"])


@router.get(
    "/v1/userprofile",
    summary="A user's properties (and, in later versions, cohorts and computations)",
    responses={401: {"description": "Missing Api-Key in Authorization header / Invalid Api-Key"}},
)
async def user_profile(request: Request) -> Response:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme != "Api-Key" or not key.strip():
        return PlainTextResponse("Missing Api-Key in Authorization header", status_code=401)
    state = state_of(request)
    async with state.db.read() as conn:
        project = await projects.by_secret_key(conn, key.strip())
        if project is None:
            return PlainTextResponse("Invalid Api-Key", status_code=401)
        status, body = await service.profile(conn, project.id, dict(request.query_params))
    return json_response(status, body)
