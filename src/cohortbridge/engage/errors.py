"""Errors that carry their HTTP meaning, rendered as Braze renders them: ``{"message": …}``."""

from __future__ import annotations

from typing import Any


class BrazeError(Exception):
    """An expected failure: ``status`` and ``message`` go to the client verbatim."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"message": self.message, **self.extra}


class NotFoundError(Exception):
    """A CLI or service lookup that found nothing; says what to do next."""


INVALID_API_KEY = "Invalid API Key"
ACCESS_DENIED = "Access Denied"


class RetryTransaction(Exception):
    """A concurrent writer won a race (a unique key, a deadlock): run the request again.

    Raised inside a transaction; the endpoint runner rolls back and retries a few times.
    """
