"""The Braze partner cohort import, as a client (spec amplitude §4.1, braze §1.5): name a
cohort, send changes; retries with exponential backoff on timeouts, 5xx, 429 and 423."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from cohortbridge.analytics.destinations.logic import RETRIES, RETRYABLE, backoff

PARTNER = "amplitude"
Sleep = Callable[[float], Awaitable[None]]


class PartnerRefused(Exception):
    """Engage answered with a status that retrying will not change (400, 401, 403, 404)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        self.status = status


class PartnerUnavailable(Exception):
    """Retries ran out: engage was down, slow, rate limiting or locked throughout."""


@dataclass
class PartnerClient:
    rest_endpoint: str
    partner_api_key: str
    client_secret: str
    http: httpx.AsyncClient
    sleep: Sleep = asyncio.sleep
    retries: int = RETRIES

    def _url(self, path: str) -> str:
        return f"{self.rest_endpoint.rstrip('/')}/partners/{PARTNER}{path}"

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        payload = {"partner_api_key": self.partner_api_key, "client_secret": self.client_secret,
                   **body}  # fmt: skip
        last = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                await self.sleep(backoff(attempt))
            try:
                response = await self.http.post(self._url(path), json=payload)
            except httpx.TransportError as error:  # timeouts, refused connections, resets
                last = f"{type(error).__name__}: {error}"
                continue
            if response.status_code in RETRYABLE:
                last = f"{response.status_code} {response.text[:200]}"
                continue
            if response.status_code >= 300:
                raise PartnerRefused(response.status_code, _message(response))
            answer: dict[str, Any] = response.json()
            return answer
        raise PartnerUnavailable(f"gave up after {self.retries + 1} attempts: {last}")

    async def name_cohort(self, cohort_id: str, name: str, created_at: str) -> None:
        await self._post("/cohorts", {"cohort_id": cohort_id, "name": name,
                                      "created_at": created_at})  # fmt: skip

    async def change_users(self, cohort_id: str, changes: list[dict[str, Any]]) -> dict[str, Any]:
        return await self._post("/cohorts/users", {"cohort_id": cohort_id,
                                                   "cohort_changes": changes})  # fmt: skip


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", response.text))
    except ValueError:
        return response.text[:200]
