"""The engage ASGI application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException

from cohortbridge import __version__
from cohortbridge.config import Settings
from cohortbridge.db.engine import Database
from cohortbridge.engage.cohorts.endpoints import router as cohorts_router
from cohortbridge.engage.errors import BrazeError
from cohortbridge.engage.http import EngageState, json_response
from cohortbridge.engage.segments.endpoints import router as segments_router
from cohortbridge.engage.users.endpoints import router as users_router
from cohortbridge.engage.users.schemas import COMPONENTS
from cohortbridge.kit.ratelimit import FixedWindowLimiter

log = logging.getLogger("cohortbridge.engage")


def create_app(settings: Settings, db: Database | None = None) -> FastAPI:
    """The app; ``db`` is passed in by tests and by ``up``, else made from settings."""
    owns_db = db is None
    database = db or Database.connect(settings.database_url("engage"))
    state = EngageState(settings=settings, db=database, limiter=FixedWindowLimiter())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await state.background.aclose()
        if owns_db:
            await database.dispose()

    app = FastAPI(
        title="cohortbridge engage",
        version=__version__,
        description="Braze-compatible REST API of cohortbridge.",
        lifespan=lifespan,
    )
    app.state.engage = state
    app.include_router(users_router)
    app.include_router(cohorts_router)
    app.include_router(segments_router)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "side": "engage", "version": __version__}

    _install_error_handlers(app)
    _document_hand_parsed_bodies(app)
    return app


def _document_hand_parsed_bodies(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(COMPONENTS)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BrazeError)
    async def _braze(_request: Request, error: BrazeError) -> Response:
        return json_response(error.status, error.body(), error.headers)

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, error: HTTPException) -> Response:
        return json_response(error.status_code, {"message": str(error.detail)})

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, _error: RequestValidationError) -> Response:
        return json_response(400, {"message": "Bad Request"})

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, error: DataError) -> Response:
        # A value the database refuses (U+0000 in a path or query parameter, a number out of
        # range) is the request's fault; its transaction was rolled back whole.
        log.warning("%s %s: the database refused a value: %s", request.method,
                    request.url.path, error.orig)  # fmt: skip
        return json_response(400, {"message": "Bad Request"})
