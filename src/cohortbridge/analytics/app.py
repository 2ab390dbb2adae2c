"""The analytics ASGI application (Amplitude-compatible)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException

from cohortbridge import __version__
from cohortbridge.analytics import jobs
from cohortbridge.analytics.cohorts.endpoints import router as cohorts_router
from cohortbridge.analytics.computations.endpoints import router as computations_router
from cohortbridge.analytics.http import AnalyticsState, json_response
from cohortbridge.analytics.ingest.endpoints import router as ingest_router
from cohortbridge.analytics.ingest.schemas import COMPONENTS
from cohortbridge.analytics.ingest.throttle import Throttle
from cohortbridge.analytics.profile.endpoints import router as profile_router
from cohortbridge.config import Settings
from cohortbridge.db.engine import Database
from cohortbridge.jobs.background import Background

log = logging.getLogger("cohortbridge.analytics")


def create_app(settings: Settings, db: Database | None = None) -> FastAPI:
    owns_db = db is None
    database = db or Database.connect(settings.database_url("analytics"))

    background = Background()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        http = httpx.AsyncClient(timeout=settings.destination_timeout_s)
        if settings.jobs_in_server:
            jobs.start(background, database, settings, http)
        yield
        await background.aclose()
        await http.aclose()
        await state.background.aclose()
        if owns_db:
            await database.dispose()

    app = FastAPI(
        title="cohortbridge analytics",
        version=__version__,
        description="Amplitude-compatible ingestion and User Profile API of cohortbridge.",
        lifespan=lifespan,
    )
    state = AnalyticsState(
        settings=settings, db=database, throttle=Throttle(settings.ingest_throttle_window_s)
    )
    app.state.analytics = state
    app.include_router(ingest_router)
    app.include_router(profile_router)
    app.include_router(cohorts_router)
    app.include_router(computations_router)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "side": "analytics", "version": __version__}

    _install_error_handlers(app)
    _document_hand_parsed_bodies(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def _http(_request: Request, error: HTTPException) -> Response:
        if error.status_code == 404:
            return json_response(404, {"code": 404, "error": "Invalid request path"})
        return json_response(error.status_code, {"code": error.status_code,
                                                 "error": str(error.detail)})  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, _error: RequestValidationError) -> Response:
        return json_response(400, {"code": 400, "error": "Invalid request"})

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, error: DataError) -> Response:
        # A value the database refuses (U+0000 in a path or query parameter, a number out of
        # range) is the request's fault; its transaction was rolled back whole.
        log.warning("%s %s: the database refused a value: %s", request.method,
                    request.url.path, error.orig)  # fmt: skip
        return json_response(400, {"code": 400, "error": "Invalid request"})


def _document_hand_parsed_bodies(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(COMPONENTS)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
