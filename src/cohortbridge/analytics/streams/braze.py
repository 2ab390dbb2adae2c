"""Braze's ``POST /users/track`` as a client (spec braze §3.3–§3.4, amplitude §4.2): one
attempt is up to three tries on 5xx, 429 and transport errors within four seconds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from cohortbridge.analytics.streams.logic import TRIES, TRY_BUDGET_S, retry_delay

Sleep = Callable[[float], Awaitable[None]]
NO_VALID_DATA = "Valid data must be provided"


class TrackFailed(Exception):
    """The attempt failed as a whole: engage refused the request or could not be reached."""


@dataclass(frozen=True)
class Tracked:
    """engage took the request: ``errors`` name the objects it rejected, by array and index."""

    errors: list[dict[str, Any]] = field(default_factory=list)
    retries: int = 0
    # A 400 "Valid data must be provided…": no object was taken, listed in errors or not.
    none_valid: bool = False


@dataclass
class TrackClient:
    rest_endpoint: str
    rest_api_key: str
    http: httpx.AsyncClient
    sleep: Sleep = asyncio.sleep
    tries: int = TRIES
    budget_s: float = TRY_BUDGET_S

    async def track(self, body: dict[str, Any]) -> Tracked:
        url = f"{self.rest_endpoint.rstrip('/')}/users/track"
        headers = {"Authorization": f"Bearer {self.rest_api_key}"}
        started = time.monotonic()
        last = "no try"
        for number in range(self.tries):
            if number:
                delay = retry_delay(number)
                if time.monotonic() - started + delay > self.budget_s:
                    break
                await self.sleep(delay)
            try:
                response = await self.http.post(url, json=body, headers=headers)
            except httpx.TransportError as error:  # timeouts, refused connections, resets
                last = f"{type(error).__name__}: {error}"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                last = f"{response.status_code} {_message(response)}"
                continue
            return _answer(response, retries=number)
        raise TrackFailed(f"gave up after {number + 1} tries: {last}")


def _answer(response: httpx.Response, *, retries: int) -> Tracked:
    answer = _json(response)
    errors = answer.get("errors") if isinstance(answer, dict) else None
    valid_errors = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
    if response.status_code in (200, 201):
        return Tracked(valid_errors, retries)
    message = str(answer.get("message", "")) if isinstance(answer, dict) else ""
    if response.status_code == 400 and message.startswith(NO_VALID_DATA) and valid_errors:
        # Every object was rejected, each for the reason given.
        return Tracked(valid_errors, retries, none_valid=True)
    raise TrackFailed(f"{response.status_code} {message or response.text[:200]}")


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _message(response: httpx.Response) -> str:
    answer = _json(response)
    if isinstance(answer, dict) and "message" in answer:
        return str(answer["message"])
    return response.text[:200]
