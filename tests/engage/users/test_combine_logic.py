"""The pure rules of combining profiles and choosing among email/phone matches."""

from datetime import UTC, datetime
from typing import Any

import pytest

from cohortbridge.engage.users.logic.attributes import ProfileState
from cohortbridge.engage.users.logic.combine import check_prioritization, choose, fill_missing


def test_fill_missing_keeps_the_survivors_values() -> None:
    target = ProfileState(columns={"first_name": "Known", "last_name": None},
                          document={"bio": "t"}, custom={"a": 1})  # fmt: skip
    source = ProfileState(columns={"first_name": "Anon", "last_name": "Only"},
                          document={"bio": "s", "facebook": {"id": 1}}, custom={"a": 2, "b": 3})  # fmt: skip
    merged = fill_missing(target, source)
    assert merged.columns == {"first_name": "Known", "last_name": "Only"}
    assert merged.document == {"bio": "t", "facebook": {"id": 1}}
    assert merged.custom == {"a": 1, "b": 3}


def at(day: int) -> datetime:
    return datetime(2026, 11, day, tzinfo=UTC)


CANDIDATES: list[dict[str, Any]] = [
    {"id": 1, "external_id": None, "updated_at": at(1)},
    {"id": 2, "external_id": "x", "updated_at": at(3)},
    {"id": 3, "external_id": None, "updated_at": at(2)},
]


@pytest.mark.parametrize(
    ("prioritization", "chosen"),
    [
        (["unidentified", "most_recently_updated"], 3),
        (["unidentified", "least_recently_updated"], 1),
        (["identified"], 2),
        (["most_recently_updated"], 2),
        (["unidentified"], None),  # still two: ambiguous, no choice
        ([], None),
    ],
)
def test_choose(prioritization: list[str], chosen: int | None) -> None:
    assert choose(CANDIDATES, prioritization) == chosen


def test_prioritization_is_checked() -> None:
    for bad in (["identified", "unidentified"], ["newest"], "identified"):
        with pytest.raises(ValueError):
            check_prioritization(bad)
