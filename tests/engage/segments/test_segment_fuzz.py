"""Whatever definition arrives, /segments/create answers 201 or 400, and a created segment's
size is computed: never a 500, on either database."""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cohortbridge.engage.segments.logic.parse import ATTRIBUTE_OPS, TIME_OPS
from tests.engage.users.helpers import track

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
    st.sampled_from(["c1", "2026-11-01T10:00:00Z", "^a.*", "(", "x'\"y", "$time", "1", ""]),
)  # fmt: skip
COMPARISONS = st.sampled_from(
    [*ATTRIBUTE_OPS, *TIME_OPS, "more_than", "less_than", "exactly", "blank", "not_blank", "is",
     "is_not", "includes_value", "excludes_value", "nope"]
)  # fmt: skip
NAMES = st.one_of(st.sampled_from(["eye", "n", "tags", "seen", "a.b", "x'y", 'q"q']),
                  st.text(max_size=8))  # fmt: skip
TEMPLATES: dict[str, dict[str, Any]] = {
    "custom_attribute": {"custom_attribute_name": "eye", "comparison": "equals", "value": "x"},
    "custom_event": {"event_name": "e", "comparison": "more_than", "value": 1, "days": 3},
    "custom_event_last_occurred": {"event_name": "e", "comparison": "after", "value": "2026-01-01"},
    "purchase": {"comparison": "exactly", "value": 0},
    "money_spent": {"comparison": "less_than", "value": 3.5, "days": 7},
    "last_purchase": {"comparison": "less_than_x_days_ago", "value": 2},
    "external_id": {"comparison": "blank"},
    "email_subscription_status": {"comparison": "is", "value": "subscribed"},
    "last_used_app": {"comparison": "before", "value": "2026-01-01"},
    "random_bucket": {"comparison": "less_than", "value": 10},
    "amplitude_cohorts": {"comparison": "includes_value", "value": "c1"},
    "partner_cohorts": {"partner": "amplitude", "comparison": "excludes_value", "value": "c1"},
}
MUTATIONS = st.dictionaries(
    st.sampled_from(["comparison", "value", "days", "custom_attribute_name", "event_name",
                     "product_id", "partner", "extra"]),
    st.one_of(SCALARS, COMPARISONS, NAMES),
    max_size=2,
)  # fmt: skip
LEAF = st.builds(
    lambda key, mutation: {key: {**TEMPLATES[key], **mutation}},
    st.sampled_from(sorted(TEMPLATES)),
    st.one_of(st.just({}), MUTATIONS),
)
DEFINITIONS = st.recursive(
    LEAF,
    lambda inner: st.one_of(
        st.builds(lambda items: {"AND": items}, st.lists(inner, max_size=3)),
        st.builds(lambda items: {"OR": items}, st.lists(inner, max_size=3)),
        st.builds(lambda item: {"NOT": item}, inner),
    ),
    max_leaves=6,
)


async def test_random_definitions_never_fail_the_server(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await track(engage, auth, attributes=[
        {"external_id": "a", "eye": "blue", "n": 3, "tags": ["x"], "seen": "2026-01-01T00:00:00Z",
         "x'y": "q", 'q"q': 1},
        {"external_id": "b"},
    ])  # fmt: skip
    definitions: list[Any] = []

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(DEFINITIONS, SCALARS))
    def collect(definition: Any) -> None:
        definitions.append(definition)

    collect()
    created = 0
    for definition in definitions:
        response = await engage.post(
            "/segments/create", json={"name": "fuzz", "filter": definition}, headers=auth
        )
        assert response.status_code in (201, 400), (definition, response.text)
        if response.status_code == 201:
            created += 1
            size = await engage.get(
                "/segments/size", params={"segment_id": response.json()["segment_id"]},
                headers=auth,
            )  # fmt: skip
            assert size.status_code == 200, (definition, size.text)
    assert created > 5, created
