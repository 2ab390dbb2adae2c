"""Segments made only of cohort filters are computed as set operations on the memberships:
the same members as the general path, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from cohortbridge.db.engine import Database
from cohortbridge.engage.segments.logic.parse import parse
from cohortbridge.engage.segments.repository import audience
from tests.engage.cohorts.conftest import Post
from tests.engage.segments.helpers import members
from tests.engage.users.helpers import track


def cohort(cohort_id: str, include: bool = True) -> dict[str, Any]:
    comparison = "includes_value" if include else "excludes_value"
    return {"amplitude_cohorts": {"comparison": comparison, "value": cohort_id}}


@pytest.fixture
async def three_cohorts(engage: httpx.AsyncClient, auth: dict[str, str], post_users: Post) -> None:
    await track(engage, auth, attributes=[{"external_id": f"u{i}"} for i in range(8)])
    for cohort_id, ids in (("a", ["u0", "u1", "u2", "u3"]), ("b", ["u3", "u4", "u5"]),
                           ("c", ["u1", "u5", "u6"])):  # fmt: skip
        response = await post_users(cohort_id, [{"user_ids": ids}])
        assert response.status_code == 201


@pytest.mark.parametrize(("definition", "expected", "as_sets"), [
    (cohort("a"), {"u0", "u1", "u2", "u3"}, True),
    ({"OR": [cohort("a"), cohort("b")]}, {"u0", "u1", "u2", "u3", "u4", "u5"}, True),
    ({"AND": [cohort("a"), cohort("b")]}, {"u3"}, True),
    ({"AND": [{"OR": [cohort("a"), cohort("b")]}, cohort("c", include=False)]},
     {"u0", "u2", "u3", "u4"}, True),
    ({"AND": [cohort("a"), cohort("b", False), cohort("c", False)]}, {"u0", "u2"}, True),
    ({"AND": [cohort("nobody"), cohort("a")]}, set(), True),
    (cohort("a", include=False), {"u4", "u5", "u6", "u7"}, False),
    ({"NOT": cohort("a")}, {"u4", "u5", "u6", "u7"}, False),
    ({"OR": [cohort("a"), {"external_id": {"comparison": "equals", "value": "u7"}}]},
     {"u0", "u1", "u2", "u3", "u7"}, False),
])  # fmt: skip
async def test_cohort_algebra(
    three_cohorts: None, engage_db: Database, workspace: dict[str, Any], definition: Any,
    expected: set[str], as_sets: bool,
) -> None:  # fmt: skip
    assert await members(engage_db, workspace["workspace_id"], definition) == expected
    scope = audience.Scope(engage_db.dialect, workspace["workspace_id"], datetime.now(UTC))
    assert (audience.cohort_sets(parse(definition), scope) is not None) == as_sets
