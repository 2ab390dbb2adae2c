"""ASGI entry points for process managers (``cohortbridge serve --workers N``, gunicorn, …).

Each worker process builds its settings from the environment, as the CLI does.
"""

from __future__ import annotations

from fastapi import FastAPI

from cohortbridge.analytics.app import create_app as create_analytics
from cohortbridge.config import Settings
from cohortbridge.engage.app import create_app as create_engage
from cohortbridge.kit.heap import freeze_startup_objects


def engage() -> FastAPI:
    app = create_engage(Settings())
    freeze_startup_objects()
    return app


def analytics() -> FastAPI:
    app = create_analytics(Settings())
    freeze_startup_objects()
    return app
