"""Time helpers: every datetime in cohortbridge is timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken to be UTC (SQLite hands them back naive)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def utc_day(value: datetime) -> date:
    return as_utc(value).date()
