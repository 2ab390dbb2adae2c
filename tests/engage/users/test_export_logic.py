"""Export formatting of stored times: SQLite's raw text and PostgreSQL's datetimes alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from cohortbridge.db.bulk import write_time
from cohortbridge.engage.users.logic.export import history
from cohortbridge.engage.users.logic.times import format_stored_time, format_time

moments = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2999, 12, 31), timezones=st.just(UTC)
)


@given(moments)
def test_sqlite_text_formats_as_the_datetime_does(moment: datetime) -> None:
    stored = write_time("sqlite", moment)  # as the hot paths store it
    assert format_stored_time(stored) == format_time(moment)
    assert format_stored_time(write_time("postgresql", moment)) == format_time(moment)


def test_other_stored_texts_are_parsed() -> None:
    assert format_stored_time("2026-11-24 12:00:00") == "2026-11-24T12:00:00.000Z"
    assert format_stored_time("2026-11-24T12:00:00.5+01:00") == "2026-11-24T11:00:00.500Z"
    east = datetime(2026, 11, 24, 13, 0, 0, 999999, tzinfo=timezone(timedelta(hours=1)))
    assert format_stored_time(east) == "2026-11-24T12:00:00.999Z"


def test_history_entries_from_stored_rows() -> None:
    rows = [("played", 3, "2026-11-01 08:00:00.123456", "2026-11-24 12:00:00.000000")]
    assert history(rows) == [
        {"name": "played", "first": "2026-11-01T08:00:00.123Z",
         "last": "2026-11-24T12:00:00.000Z", "count": 3}
    ]  # fmt: skip
