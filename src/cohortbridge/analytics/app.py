"""The analytics ASGI application (Amplitude-compatible). Ingestion arrives with its issue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cohortbridge import __version__
from cohortbridge.config import Settings
from cohortbridge.db.engine import Database


def create_app(settings: Settings, db: Database | None = None) -> FastAPI:
    owns_db = db is None
    database = db or Database.connect(settings.database_url("analytics"))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if owns_db:
            await database.dispose()

    app = FastAPI(title="cohortbridge analytics", version=__version__, lifespan=lifespan)
    app.state.db = database
    app.state.settings = settings

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "side": "analytics", "version": __version__}

    return app
