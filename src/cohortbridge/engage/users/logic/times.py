"""Braze's accepted datetime formats (spec braze §3.3.1, §3.3.2)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_FORMATS = (
    "%Y-%m-%dT%H:%M:%S:%f%z",  # yyyy-MM-dd'T'HH:mm:ss:SSSZ
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d",
    "%m/%d/%Y",
    "%m-%d-%Y",
    "%a %m %d %H:%M:%S.%z %Y",  # ddd MM dd HH:mm:ss.TZD YYYY
)

# Strings that Braze turns into a time attribute when written as a custom attribute value.
_DATE_LIKE = re.compile(
    r"^(\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}([.:]\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?"
    r"|\d{1,2}[/-]\d{1,2}[/-]\d{4})$"
)


def parse_time(value: object) -> datetime | None:
    """A timezone-aware UTC datetime, or None when the value is not a Braze time.

    A time without a zone is UTC (Braze: "midnight UTC" for bare dates).
    """
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    text = value.strip()
    parsed = _iso(text)
    if parsed is None:
        for fmt in _FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _iso(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None


def looks_like_date(value: str) -> bool:
    return bool(_DATE_LIKE.match(value))


def format_time(value: datetime) -> str:
    """ISO-8601 with milliseconds and a Z, as Braze renders times."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def format_stored_time(value: datetime | str) -> str:
    """``format_time`` of a timestamp as a driver reads it raw: a datetime (PostgreSQL) or
    SQLite's naive-UTC text ``YYYY-MM-DD HH:MM:SS.ffffff``, cut to milliseconds without being
    parsed (an export formats hundreds of thousands)."""
    if isinstance(value, str):
        if len(value) == 26 and value[10] == " " and value[19] == ".":
            return f"{value[:10]}T{value[11:23]}Z"
        parsed = datetime.fromisoformat(value)
        value = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return format_time(value)


def in_storable_range(value: datetime) -> bool:
    """Braze stores years outside 0..3000 as strings, not times."""
    return 0 < value.year <= 3000
