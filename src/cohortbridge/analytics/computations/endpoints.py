"""Our computation endpoints (Amplitude defines computations only in its UI)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.computations import repository as repo
from cohortbridge.analytics.computations import service
from cohortbridge.analytics.http import dashboard_answer, project_of

router = APIRouter(tags=["computations"])


@router.post("/api/3/computations", summary="Define a computation (ours)")
async def create(request: Request) -> Response:
    async def work(conn: AsyncConnection, project_id: int, payload: Any) -> tuple[int, Any]:
        return 200, await service.create(conn, project_id, payload)

    return await dashboard_answer(request, project_of, work, write=True, body=True)


@router.get("/api/3/computations", summary="List computations (ours)")
async def listing(request: Request) -> Response:
    async def work(conn: AsyncConnection, project_id: int, _payload: Any) -> tuple[int, Any]:
        rows = await repo.listing(conn, project_id)
        return 200, {"computations": [service.listing_object(row) for row in rows]}

    return await dashboard_answer(request, project_of, work, write=False)


@router.post("/api/3/computations/{computation_id}/compute", summary="Compute now (ours)")
async def compute(request: Request, computation_id: str) -> Response:
    async def work(conn: AsyncConnection, project_id: int, _payload: Any) -> tuple[int, Any]:
        row = await service.found(conn, project_id, computation_id)
        return 200, {"id": row["id"], "users": await service.compute(conn, row)}

    return await dashboard_answer(request, project_of, work, write=True)
