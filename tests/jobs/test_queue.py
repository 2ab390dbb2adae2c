"""The job queue's pure parts: schedules as cron expressions, the connection string."""

from __future__ import annotations

from datetime import UTC, datetime

import croniter
import pytest

from cohortbridge.jobs import queue


@pytest.mark.parametrize(
    ("interval_s", "expected"),
    [
        (0.2, "* * * * * */1"),
        (1, "* * * * * */1"),
        (7, "* * * * * */6"),  # 7 does not divide a minute: every 6 s, evenly
        (30, "* * * * * */30"),
        (60, "*/1 * * * *"),
        (300, "*/5 * * * *"),
        (3600, "0 */1 * * *"),
        (6 * 3600, "0 */6 * * *"),
        (86400, "0 0 * * *"),
        (7 * 86400, "0 0 * * *"),
    ],
)
def test_an_interval_becomes_an_even_cron(interval_s: float, expected: str) -> None:
    assert queue.cron(interval_s) == expected


def test_sub_minute_schedules_fire_on_the_seconds() -> None:
    ticks = croniter.croniter(queue.cron(15), datetime(2026, 12, 1, 12, 0, 1, tzinfo=UTC))
    assert [ticks.get_next(datetime).second for _ in range(4)] == [15, 30, 45, 0]


def test_the_connection_string_is_libpq_s() -> None:
    url = "postgresql+psycopg://app:s3cret@db.internal:5433/analytics"
    assert queue.conninfo(url) == "postgresql://app:s3cret@db.internal:5433/analytics"
