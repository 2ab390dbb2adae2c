"""Fixtures of the analytics → engage flows: a real engage server and Amplitude's keys."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from cohortbridge.config import Settings
from cohortbridge.db.engine import Database
from cohortbridge.engage.app import create_app as create_engage
from cohortbridge.engage.partners import service as partners
from tests.conftest import LiveServer


@pytest.fixture
def engage_server(settings: Settings, engage_db: Database) -> Iterator[LiveServer]:
    served = settings.model_copy(update={"engage_database_url": engage_db.url})
    with LiveServer(create_engage(served)) as server:
        yield server


@pytest.fixture
async def braze(engage_db: Database, workspace: dict[str, Any]) -> dict[str, str]:
    async with engage_db.transaction() as conn:
        partner = await partners.create_partner_key(conn, "amplitude")
        secret = await partners.create_import_key(conn, workspace["workspace_id"], "amplitude",
                                                  "http://engage.test")  # fmt: skip
    return {"partner_api_key": partner.partner_api_key, "client_secret": secret.data_import_key,
            "key_id": secret.id}  # fmt: skip


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=1.0) as client:
        yield client
