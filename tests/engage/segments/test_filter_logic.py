"""The filter vocabulary and its description: pure rules, no database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cohortbridge.engage.segments.logic import tree as t
from cohortbridge.engage.segments.logic.describe import Names, describe
from cohortbridge.engage.segments.logic.parse import InvalidFilter, parse


def test_the_value_type_chooses_the_attribute_type() -> None:
    def attr(comparison: str, value: Any) -> t.Node:
        return parse({"custom_attribute": {"custom_attribute_name": "a",
                                           "comparison": comparison, "value": value}})  # fmt: skip

    assert attr("equals", "x") == t.StringAttr("a", "equals", "x")
    assert attr("equals", 3) == t.NumberAttr("a", "equals", 3.0)
    assert attr("equals", True) == t.BooleanAttr("a", equals=True, negate=False)
    assert attr("not_equal", False) == t.BooleanAttr("a", equals=False, negate=True)
    assert attr("does_not_equal", 2) == t.NumberAttr("a", "not_equal", 2.0)
    assert attr("greater_than_x_days_ago", 3) == t.TimeAttr(
        "a", "more_than_x_days_ago", t.TimeValue(days=3)
    )
    assert attr("after", "2026-01-02") == t.TimeAttr(
        "a", "after", t.TimeValue(instant=datetime(2026, 1, 2, tzinfo=UTC))
    )


def test_partner_cohort_filters() -> None:
    value = {"comparison": "excludes_value", "value": "c9"}
    assert parse({"amplitude_cohorts": value}) == t.CohortMember("amplitude", "c9", False)
    assert parse({"mixpanel_cohorts": value}) == t.CohortMember("mixpanel", "c9", False)
    assert parse({"partner_cohorts": {"partner": "amplitude", **value}}) == t.CohortMember(
        "amplitude", "c9", False
    )


def test_groups_and_what_they_name() -> None:
    tree = parse({"AND": [
        {"amplitude_cohorts": {"comparison": "includes_value", "value": "c1"}},
        {"NOT": {"OR": [{"segment_membership": {"comparison": "includes_value", "value": "s1"}},
                        {"external_id": {"comparison": "blank"}}]}},
    ]})  # fmt: skip
    assert isinstance(tree, t.And)
    assert t.segments_named(tree) == {"s1"}
    assert t.cohorts_named(tree) == {("amplitude", "c1")}


@pytest.mark.parametrize(("definition", "path", "reason"), [
    ({"AND": [{}]}, "filter.AND[0]", "must be an object with exactly one key, the filter's name"),
    ({"custom_event": {"event_name": "e", "comparison": "more_than", "value": -1}},
     "filter.custom_event.value", "must be between 0 and 4611686018427387904"),
    ({"custom_event": {"event_name": "e", "comparison": "more_than", "value": 1.5}},
     "filter.custom_event.value", "must be an integer"),
    ({"custom_attribute": {"custom_attribute_name": "$x", "comparison": "exists"}},
     "filter.custom_attribute.custom_attribute_name", "must not start with '$'"),
    ({"custom_attribute": {"custom_attribute_name": "x", "comparison": "greater_than",
                           "value": True}},
     "filter.custom_attribute.value", "'greater_than' needs a number, not a boolean"),
    ({"external_id": {"comparison": "equals"}}, "filter.external_id.value",
     "must be a non-empty string"),
])  # fmt: skip
def test_errors_name_the_path_and_why(definition: Any, path: str, reason: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse(definition)
    assert (caught.value.path, caught.value.reason) == (path, reason)


def test_descriptions_read_like_the_dashboard() -> None:
    tree = parse({"AND": [
        {"amplitude_cohorts": {"comparison": "includes_value", "value": "c1"}},
        {"OR": [
            {"custom_event": {"event_name": "played", "comparison": "more_than", "value": 2,
                              "days": 7}},
            {"money_spent": {"comparison": "more_than", "value": 10}},
        ]},
        {"NOT": {"email_subscription_status": {"comparison": "is", "value": "opted_in"}}},
        {"segment_membership": {"comparison": "excludes_value", "value": "s1"}},
    ]})  # fmt: skip
    names = Names({("amplitude", "c1"): "[Amplitude] Fans: c1"}, {"s1": "Churned"},
                  {"amplitude": "Amplitude"})  # fmt: skip
    assert describe(tree, names) == (
        'Amplitude Cohorts includes "[Amplitude] Fans: c1" AND (did custom event "played" more '
        "than 2 times in the last 7 days OR money spent more than 10) AND NOT Email subscription "
        'status is opted-in AND is not in segment "Churned"'
    )
    unknown = parse({"amplitude_cohorts": {"comparison": "includes_value", "value": "zz"}})
    assert describe(unknown) == 'Amplitude Cohorts includes "[Amplitude] zz"'
