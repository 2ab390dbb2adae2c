"""The Behavioral Cohorts REST API (spec amplitude §3.2), Basic auth ``api_key:secret_key``,
plus our endpoints to define, change, archive and compute behavioral cohorts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.cohorts import downloads, service
from cohortbridge.analytics.cohorts.repository import definitions as repo
from cohortbridge.analytics.http import (
    DashboardError,
    DashboardWork,
    dashboard_answer,
    json_response,
    project_of,
    state_of,
)

router = APIRouter(tags=["cohorts"])


def _epoch(moment: Any) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


def cohort_object(row: RowMapping, project_id: int, sync_info: bool) -> dict[str, Any]:
    """Amplitude's cohort object, as ``GET /api/3/cohorts`` lists it."""
    body: dict[str, Any] = {
        "appId": project_id, "archived": row["archived"], "definition": row["definition"],
        "description": row["description"], "finished": row["computed_at"] is not None
        or row["kind"] == "static", "id": row["id"], "name": row["name"],
        "owners": [row["owner"]] if row["owner"] else [], "viewers": [],
        "published": row["published"], "size": row["size"],
        "type": "redshift" if row["kind"] == "behavioral" else "static",
        "lastMod": _epoch(row["updated_at"]), "createdAt": _epoch(row["created_at"]),
        "lastComputed": _epoch(row["computed_at"]), "hidden": False, "metadata": None,
        "view_count": None, "popularity": None, "last_viewed": None, "chart_id": None,
        "edit_id": None, "is_predictive": False, "is_official_content": False,
        "location_id": None, "shortcut_ids": [],
    }  # fmt: skip
    if sync_info:
        body["syncMetadata"] = []  # the Braze destination fills this (issue 7)
    return body


async def _answer(
    request: Request, work: DashboardWork, *, write: bool, body: bool = False
) -> Response:
    return await dashboard_answer(request, project_of, work, write=write, body=body)


@router.get("/api/3/cohorts", summary="List cohorts (Amplitude)")
async def list_cohorts(request: Request) -> Response:
    wanted = request.query_params.get("cohortIds")
    sync_info = request.query_params.get("includeSyncInfo", "").lower() == "true"

    async def work(conn: AsyncConnection, project_id: int, payload: Any) -> tuple[int, Any]:
        ids = [i for i in wanted.split(",") if i] if wanted else None
        rows = await repo.listing(conn, project_id, ids)
        return 200, {"cohorts": [cohort_object(r, project_id, sync_info) for r in rows]}

    return await _answer(request, work, write=False)


@router.get("/api/5/cohorts/request/{cohort_id}", status_code=202,
            summary="Request a cohort's members as a file (Amplitude, step 1)")  # fmt: skip
async def request_cohort(request: Request, cohort_id: str) -> Response:
    params = {"props": request.query_params.get("props", "0"),
              "propKeys": request.query_params.getlist("propKeys")}  # fmt: skip
    created: list[str] = []

    async def work(conn: AsyncConnection, project_id: int, payload: Any) -> tuple[int, Any]:
        body = await downloads.request(conn, project_id, cohort_id, downloads.wanted_props(params))
        created.append(body["request_id"])
        return 202, body

    response = await _answer(request, work, write=True)
    if response.status_code == 202 and created:
        state = state_of(request)
        job = downloads.write(state.db, state.settings.cohort_downloads_dir, created[-1])
        state.background.spawn(f"cohorts.download:{created[-1]}", job)
    return response


@router.get("/api/5/cohorts/request-status/{request_id}",
            summary="Whether a requested cohort file is ready (Amplitude, step 2)")  # fmt: skip
async def request_status(request: Request, request_id: str) -> Response:
    async def work(conn: AsyncConnection, project_id: int, payload: Any) -> tuple[int, Any]:
        return await downloads.status(conn, project_id, request_id)

    return await _answer(request, work, write=False)


@router.get(
    "/api/5/cohorts/request/{request_id}/file",
    summary="The requested cohort file: CSV amplitude_id,user_id,… (Amplitude, step 3)",
)
async def request_file(request: Request, request_id: str) -> Response:
    try:
        project_id = await project_of(request)
        state = state_of(request)
        async with state.db.read() as conn:
            folder = state.settings.cohort_downloads_dir
            path = await downloads.ready_file(conn, project_id, folder, request_id)
    except DashboardError as error:
        return json_response(error.status, error.body)
    return FileResponse(path, media_type="text/csv", filename=f"cohort-{request_id}.csv")


@router.post("/api/3/cohorts/upload", summary="Create or replace a static cohort (Amplitude)")
async def upload(request: Request) -> Response:
    async def work(conn: AsyncConnection, project_id: int, payload: Any) -> tuple[int, Any]:
        return 200, await service.upload(conn, project_id, payload)

    return await _answer(request, work, write=True, body=True)


@router.post("/api/3/cohorts/membership", summary="Add and remove cohort members (Amplitude)")
async def membership(request: Request) -> Response:
    async def work(conn: AsyncConnection, project_id: int, payload: Any) -> tuple[int, Any]:
        return 200, await service.update_membership(conn, project_id, payload)

    return await _answer(request, work, write=True, body=True)


@router.post("/api/3/cohorts/behavioral", summary="Define a behavioral cohort (ours)")
async def create_behavioral(request: Request) -> Response:
    async def work(conn: AsyncConnection, project_id: int, payload: Any) -> tuple[int, Any]:
        draft = service.prepare(payload, creating=True)
        return 200, await service.create(conn, project_id, draft)

    return await _answer(request, work, write=True, body=True)


@router.put("/api/3/cohorts/behavioral/{cohort_id}",
            summary="Change a behavioral cohort's name, definition or refresh (ours)")  # fmt: skip
async def update_behavioral(request: Request, cohort_id: str) -> Response:
    async def work(conn: AsyncConnection, project_id: int, payload: Any) -> tuple[int, Any]:
        draft = service.prepare(payload, creating=False)
        return 200, await service.update(conn, project_id, cohort_id, draft)

    return await _answer(request, work, write=True, body=True)


@router.delete("/api/3/cohorts/{cohort_id}", summary="Archive a cohort (ours)")
async def archive(request: Request, cohort_id: str) -> Response:
    async def work(conn: AsyncConnection, project_id: int, payload: Any) -> tuple[int, Any]:
        return 200, await service.archive(conn, project_id, cohort_id)

    return await _answer(request, work, write=True)


@router.post("/api/3/cohorts/{cohort_id}/compute", summary="Compute a cohort now (ours)")
async def compute(request: Request, cohort_id: str) -> Response:
    async def work(conn: AsyncConnection, project_id: int, payload: Any) -> tuple[int, Any]:
        done = await service.compute_by_id(conn, project_id, cohort_id)
        return 200, {"cohortId": done.cohort_id, "version": done.version, "size": done.size,
                     "entered": done.entered, "left": done.left}  # fmt: skip

    return await _answer(request, work, write=True)


@router.get("/api/3/cohorts/{cohort_id}/computations",
            summary="A cohort's computation history (ours)")  # fmt: skip
async def computations(request: Request, cohort_id: str) -> Response:
    async def work(conn: AsyncConnection, project_id: int, payload: Any) -> tuple[int, Any]:
        row = await service.found(conn, project_id, cohort_id)
        history = await repo.computations(conn, row["pk"])
        return 200, {"cohortId": row["id"], "computations": [
            {"version": h["version"], "computed_at": _epoch(h["computed_at"]),
             "size": h["size"], "entered": h["entered"], "left": h["left"],
             "duration_ms": h["duration_ms"]} for h in history]}  # fmt: skip

    return await _answer(request, work, write=False)
