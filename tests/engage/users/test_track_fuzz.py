"""Whatever JSON arrives, /users/track answers 201 or 400: never a 500."""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

KEYS = st.sampled_from([
    "external_id", "user_alias", "braze_id", "email", "phone", "_update_existing_only",
    "_merge_objects", "push_token_import", "push_tokens", "first_name", "gender", "dob", "country",
    "language", "time_zone", "email_subscribe", "current_location", "subscription_groups",
    "name", "time", "properties", "app_id", "product_id", "currency", "price", "quantity",
    "custom", "tags", "alias_name", "alias_label",
])  # fmt: skip
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30), st.sampled_from(["u1", "2026-11-01T10:00:00Z", "a@b.co", "USD", "opted_in"]),
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(KEYS, st.text(max_size=8)), inner, max_size=4),
    ),
    max_leaves=12,
)
OBJECTS = st.dictionaries(KEYS, VALUES, max_size=8)
BODIES = st.fixed_dictionaries(
    {},
    optional={
        "attributes": st.one_of(st.lists(OBJECTS, max_size=3), VALUES),
        "events": st.one_of(st.lists(OBJECTS, max_size=3), VALUES),
        "purchases": st.one_of(st.lists(OBJECTS, max_size=3), VALUES),
    },
)


async def test_random_bodies_never_fail_the_server(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    seen: set[int] = set()

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(BODIES)
    def check(body: dict[str, Any]) -> None:
        bodies.append(body)

    bodies: list[dict[str, Any]] = []
    check()
    for body in bodies:
        response = await engage.post("/users/track", json=body, headers=auth)
        assert response.status_code in (201, 400), (body, response.text)
        seen.add(response.status_code)
    assert 400 in seen
