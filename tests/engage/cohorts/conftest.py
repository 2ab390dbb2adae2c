"""Fixtures for the partner cohort import: Amplitude's partner key and a data import key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from cohortbridge.db.engine import Database
from cohortbridge.engage.cohorts import service as cohorts
from cohortbridge.engage.partners import service as partners

Post = Callable[..., Awaitable[httpx.Response]]


@pytest.fixture
async def keys(engage_db: Database, workspace: dict[str, Any]) -> dict[str, str]:
    async with engage_db.transaction() as conn:
        partner = await partners.create_partner_key(conn, "amplitude")
        secret = await partners.create_import_key(
            conn, workspace["workspace_id"], "amplitude", "http://engage.test"
        )
    return {
        "partner_api_key": partner.partner_api_key,
        "client_secret": secret.data_import_key,
        "key_id": secret.id,
    }


@pytest.fixture
def post_users(engage: httpx.AsyncClient, keys: dict[str, str]) -> Post:
    async def post(cohort_id: str = "c1", changes: Any = None, **extra: Any) -> httpx.Response:
        body = {"partner_api_key": keys["partner_api_key"], "client_secret": keys["client_secret"],
                "cohort_id": cohort_id, "cohort_changes": changes if changes is not None else []}  # fmt: skip
        body.update(extra)
        return await engage.post("/partners/amplitude/cohorts/users", json=body)

    return post


@pytest.fixture
def members(
    engage_db: Database, workspace: dict[str, Any]
) -> Callable[[str], Awaitable[list[Any]]]:
    async def read(cohort_id: str = "c1") -> list[Any]:
        async with engage_db.read() as conn:
            found = await cohorts.members(conn, workspace["workspace_id"], "amplitude", cohort_id)
        return sorted(found, key=lambda x: (x is None, x or ""))

    return read
