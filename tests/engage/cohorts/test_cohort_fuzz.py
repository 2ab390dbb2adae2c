"""Whatever JSON a partner sends with valid keys, the users endpoint answers 201 or 400."""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

IDS = st.lists(st.one_of(st.text(max_size=12), st.integers(), st.none()), max_size=4)
ALIASES = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {"alias_name": st.text(max_size=8), "alias_label": st.text(max_size=8)}
        ),
        st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=2),
        st.text(max_size=4),
    ),
    max_size=3,
)
CHANGE = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={"user_ids": st.one_of(IDS, st.text(max_size=4)), "device_ids": IDS,
                  "aliases": ALIASES, "should_remove": st.one_of(st.booleans(), st.none(), st.text(max_size=3))},
    ),
    st.text(max_size=5),
    st.integers(),
)  # fmt: skip
BODY = st.fixed_dictionaries(
    {},
    optional={"cohort_id": st.one_of(st.text(max_size=20), st.integers(), st.none()),
              "cohort_changes": st.one_of(st.lists(CHANGE, max_size=3), st.text(max_size=4))},
)  # fmt: skip


async def test_random_cohort_bodies_never_fail_the_server(
    engage: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    bodies: list[dict[str, Any]] = []

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(BODY)
    def collect(body: dict[str, Any]) -> None:
        bodies.append(body)

    collect()
    creds = {"partner_api_key": keys["partner_api_key"], "client_secret": keys["client_secret"]}
    for body in bodies:
        response = await engage.post("/partners/amplitude/cohorts/users", json={**body, **creds})
        assert response.status_code in (201, 400), (body, response.text)
