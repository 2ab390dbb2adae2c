"""The partner cohort import routes (spec braze §1.5)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from cohortbridge.engage.cohorts import service
from cohortbridge.engage.http import run_partner_endpoint

router = APIRouter(tags=["partner cohort import"])


@router.post("/partners/{partner}/cohorts", summary="Create or rename a partner cohort")
async def name_cohort(partner: str, request: Request) -> Response:
    return await run_partner_endpoint(
        request, partner, service.name_cohort, prepare=service.prepare_name
    )


@router.post("/partners/{partner}/cohorts/users", summary="Add or remove cohort members")
async def change_users(partner: str, request: Request) -> Response:
    return await run_partner_endpoint(
        request, partner, service.change_users, prepare=service.prepare_changes
    )
