"""Segment filters evaluated in the database, with Braze's semantics (spec braze §5.4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cohortbridge.db.engine import Database
from cohortbridge.engage.workspaces import service as workspaces
from tests.engage.segments.helpers import attribute, members
from tests.engage.users.helpers import track

NOW = datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
async def people(engage: httpx.AsyncClient, auth: dict[str, str]) -> None:
    """u1 is "blue"/5/true/[x, y]; u2 is "Blue"/0/false/[]; u3 has no custom attribute;
    one anonymous (alias-only) profile."""
    response = await track(engage, auth, attributes=[
        {"external_id": "u1", "eye": "blue", "n": 5, "b": True, "tags": ["x", "y"],
         "seen": iso(NOW - timedelta(days=1)), "email": "u1@example.com",
         "email_subscribe": "opted_in"},
        {"external_id": "u2", "eye": "Blue", "n": 0, "b": False, "tags": [],
         "seen": iso(NOW + timedelta(days=3)), "email_subscribe": "unsubscribed"},
        {"external_id": "u3"},
        {"user_alias": {"alias_name": "a1", "alias_label": "l"}, "_update_existing_only": False,
         "eye": "green"},
    ], events=[
        *({"external_id": "u1", "name": "play", "time": iso(NOW - timedelta(hours=h))}
          for h in (1, 2, 30)),
        {"external_id": "u2", "name": "play", "time": iso(NOW - timedelta(days=20))},
    ], purchases=[
        {"external_id": "u1", "product_id": "pro", "currency": "USD", "price": 10,
         "time": iso(NOW - timedelta(days=2))},
        {"external_id": "u2", "product_id": "lite", "currency": "USD", "price": 1,
         "time": iso(NOW - timedelta(days=40))},
    ])  # fmt: skip
    assert response.status_code == 201, response.text
    assert "errors" not in response.json(), response.json()["errors"]


Case = tuple[Any, set[str]]
ATTRIBUTE_CASES: list[Case] = [
    (attribute("eye", "equals", "blue"), {"u1"}),  # case-sensitive
    (attribute("eye", "not_equal", "BLUE"), {"u3", "-"}),  # not case-sensitive, blanks match
    (attribute("eye", "matches_regex", "^BL"), {"u1", "u2"}),  # case-insensitive
    (attribute("eye", "does_not_match_regex", "^bl"), {"-"}),  # only users with a value
    (attribute("tags", "matches_regex", "^Y$"), {"u1"}),  # any array element
    (attribute("n", "greater_than", 1), {"u1"}),
    (attribute("n", "greater_than_or_equal_to", 0), {"u1", "u2"}),
    (attribute("n", "less_than", 5), {"u2", "u3", "-"}),  # less than includes blanks
    (attribute("n", "equals", 0), {"u2", "u3", "-"}),  # exactly 0 includes blanks
    (attribute("n", "equals", 5), {"u1"}),
    (attribute("n", "not_equal", 5), {"u2", "u3", "-"}),
    (attribute("eye", "greater_than", 0), set()),  # a string is not a number
    (attribute("b", "equals", True), {"u1"}),
    (attribute("b", "equals", False), {"u2"}),
    (attribute("b", "does_not_equal", True), {"u2", "u3", "-"}),
    (attribute("tags", "includes_value", "x"), {"u1"}),
    (attribute("tags", "does_not_include_value", "x"), {"u2", "u3", "-"}),
    (attribute("eye", "includes_value", "blue"), set()),  # a string is not an array
    (attribute("tags", "exists"), {"u1"}),  # an empty array is blank
    (attribute("tags", "does_not_exist"), {"u2", "u3", "-"}),
    (attribute("eye", "exists"), {"u1", "u2", "-"}),
    (attribute("seen", "less_than_x_days_ago", 2), {"u1"}),
    (attribute("seen", "more_than_x_days_ago", 0.5), {"u1"}),
    (attribute("seen", "greater_than_x_days_ago", 2), set()),
    (attribute("seen", "less_than_x_days_in_the_future", 4), {"u2"}),
    (attribute("seen", "greater_than_x_days_in_the_future", 4), set()),
    (attribute("seen", "after", iso(NOW)), {"u2"}),
    (attribute("seen", "before", iso(NOW)), {"u1"}),
    (attribute("seen", "exists"), {"u1", "u2"}),
]


@pytest.mark.parametrize(("definition", "expected"), ATTRIBUTE_CASES)
async def test_custom_attribute_filters(
    people: None, engage_db: Database, workspace: dict[str, Any], definition: Any,
    expected: set[str],
) -> None:  # fmt: skip
    assert await members(engage_db, workspace["workspace_id"], definition) == expected


HISTORY_CASES: list[Case] = [
    ({"custom_event": {"event_name": "play", "comparison": "more_than", "value": 2}}, {"u1"}),
    ({"custom_event": {"event_name": "play", "comparison": "exactly", "value": 1}}, {"u2"}),
    ({"custom_event": {"event_name": "play", "comparison": "less_than", "value": 1}},
     {"u3", "-"}),
    ({"custom_event": {"event_name": "play", "comparison": "exactly", "value": 0}}, {"u3", "-"}),
    # "X times in the last Y days": u1's three plays are within 2 days, u2's is 20 days old.
    ({"custom_event": {"event_name": "play", "comparison": "more_than", "value": 2, "days": 7}},
     {"u1"}),
    ({"custom_event": {"event_name": "play", "comparison": "more_than", "value": 0, "days": 30}},
     {"u1", "u2"}),
    ({"custom_event": {"event_name": "play", "comparison": "exactly", "value": 0, "days": 7}},
     {"u2", "u3", "-"}),
    ({"custom_event_last_occurred": {"event_name": "play", "comparison": "less_than_x_days_ago",
                                     "value": 1}}, {"u1"}),
    ({"custom_event_last_occurred": {"event_name": "play", "comparison": "more_than_x_days_ago",
                                     "value": 10}}, {"u2"}),
    ({"custom_event_first_occurred": {"event_name": "play", "comparison": "before",
                                      "value": iso(NOW - timedelta(hours=3))}}, {"u1", "u2"}),
    ({"custom_event_last_occurred": {"event_name": "nope", "comparison": "after",
                                     "value": "2000-01-01"}}, set()),
    ({"purchase": {"comparison": "more_than", "value": 0}}, {"u1", "u2"}),
    ({"purchase": {"comparison": "exactly", "value": 0}}, {"u3", "-"}),
    ({"purchase": {"product_id": "pro", "comparison": "exactly", "value": 1}}, {"u1"}),
    ({"purchase": {"comparison": "more_than", "value": 0, "days": 30}}, {"u1"}),
    ({"money_spent": {"comparison": "more_than", "value": 5}}, {"u1"}),
    ({"money_spent": {"comparison": "less_than", "value": 5}}, {"u2", "u3", "-"}),
    ({"money_spent": {"comparison": "exactly", "value": 0, "days": 30}}, {"u2", "u3", "-"}),
    ({"last_purchase": {"comparison": "more_than_x_days_ago", "value": 30}}, {"u2"}),
    ({"last_purchase": {"comparison": "less_than_x_days_ago", "value": 3}}, {"u1"}),
    ({"first_purchase": {"product_id": "lite", "comparison": "before", "value": iso(NOW)}},
     {"u2"}),
]  # fmt: skip


@pytest.mark.parametrize(("definition", "expected"), HISTORY_CASES)
async def test_event_and_purchase_filters(
    people: None, engage_db: Database, workspace: dict[str, Any], definition: Any,
    expected: set[str],
) -> None:  # fmt: skip
    assert await members(engage_db, workspace["workspace_id"], definition) == expected


STANDARD_CASES: list[Case] = [
    ({"external_id": {"comparison": "blank"}}, {"-"}),
    ({"external_id": {"comparison": "not_blank"}}, {"u1", "u2", "u3"}),
    ({"external_id": {"comparison": "equals", "value": "u2"}}, {"u2"}),
    ({"external_id": {"comparison": "not_equal", "value": "u2"}}, {"u1", "u3", "-"}),
    ({"email_address": {"comparison": "blank"}}, {"u2", "u3", "-"}),
    ({"email_address": {"comparison": "not_blank"}}, {"u1"}),
    ({"email_subscription_status": {"comparison": "is", "value": "opted_in"}}, {"u1"}),
    # Never set: "subscribed", Braze's default.
    ({"email_subscription_status": {"comparison": "is", "value": "subscribed"}}, {"u3", "-"}),
    ({"email_subscription_status": {"comparison": "is_not", "value": "unsubscribed"}},
     {"u1", "u3", "-"}),
    ({"push_subscription_status": {"comparison": "is", "value": "subscribed"}},
     {"u1", "u2", "u3", "-"}),
    ({"random_bucket": {"comparison": "greater_than_or_equal_to", "value": 0}},
     {"u1", "u2", "u3", "-"}),
    ({"random_bucket": {"comparison": "less_than", "value": 0}}, set()),
    ({"last_used_app": {"comparison": "after", "value": "2000-01-01"}}, set()),
]  # fmt: skip


@pytest.mark.parametrize(("definition", "expected"), STANDARD_CASES)
async def test_standard_field_filters(
    people: None, engage_db: Database, workspace: dict[str, Any], definition: Any,
    expected: set[str],
) -> None:  # fmt: skip
    assert await members(engage_db, workspace["workspace_id"], definition) == expected


async def test_groups_nest_and_not_is_the_complement(
    people: None, engage_db: Database, workspace: dict[str, Any]
) -> None:
    ws = workspace["workspace_id"]
    blue = attribute("eye", "equals", "blue")
    many = attribute("n", "greater_than", 1)
    assert await members(engage_db, ws, {"NOT": blue}) == {"u2", "u3", "-"}
    assert await members(engage_db, ws, {"NOT": {"NOT": blue}}) == {"u1"}
    # A comparison that is unknown for blanks (NULL in SQL) still splits the set in two.
    assert await members(engage_db, ws, {"NOT": attribute("seen", "after", "2000-01-01")}) == {
        "u3", "-"}  # fmt: skip
    nested = {"OR": [{"AND": [blue, many]}, {"NOT": {"OR": [blue, attribute("eye", "exists")]}}]}
    assert await members(engage_db, ws, nested) == {"u1", "u3"}


async def test_last_used_app_follows_sessions(
    engage: httpx.AsyncClient, engage_db: Database, workspace: dict[str, Any]
) -> None:
    response = await engage.post("/sdk/sessions", json={
        "app_id": workspace["app_id"], "device_id": "dev-1", "external_id": "s1",
    })  # fmt: skip
    assert response.status_code == 201, response.text
    ws = workspace["workspace_id"]
    recent = {"last_used_app": {"comparison": "less_than_x_days_ago", "value": 1}}
    assert await members(engage_db, ws, recent) == {"s1"}
    later = NOW + timedelta(days=3)
    assert await members(engage_db, ws, recent, now=later) == set()


async def test_workspaces_never_see_each_others_profiles(
    people: None, engage_db: Database, workspace: dict[str, Any]
) -> None:
    async with engage_db.transaction() as conn:
        other = await workspaces.bootstrap(conn, "Other", "http://engage.test")
    everyone = {"random_bucket": {"comparison": "greater_than_or_equal_to", "value": 0}}
    assert await members(engage_db, other.workspace_id, everyone) == set()
