"""Whatever arrives at the ingestion endpoints, the answer is Amplitude-shaped: never a 500."""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

KEYS = st.sampled_from([
    "user_id", "device_id", "event_type", "time", "event_properties", "user_properties",
    "insert_id", "session_id", "platform", "price", "quantity", "revenue", "groups",
    "$skip_user_properties_sync", "location_lat", "library",
])  # fmt: skip
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
    st.sampled_from(["user-12345", "device-12345", "null", "abc", "$set", "$add", "$clearAll"]),
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(KEYS, st.sampled_from(["$set", "$add", "$append", "$unset"]),
                                  st.text(max_size=6)), inner, max_size=3),
    ),
    max_leaves=10,
)  # fmt: skip
EVENTS = st.one_of(
    st.lists(st.dictionaries(KEYS, VALUES, max_size=6), max_size=4),
    st.lists(st.fixed_dictionaries({"user_id": st.just("fuzz-user"), "event_type": st.just("e")},
                                   optional={"user_properties": VALUES, "time": VALUES,
                                             "event_properties": VALUES}), max_size=3),
    VALUES,
)  # fmt: skip


async def test_random_uploads_never_fail_the_server(
    analytics: httpx.AsyncClient, project: dict[str, Any]
) -> None:
    bodies: list[Any] = []

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(EVENTS, st.one_of(st.none(), st.dictionaries(st.just("min_id_length"), SCALARS)))
    def collect(events: Any, options: Any) -> None:
        bodies.append({"api_key": project["api_key"], "events": events, "options": options})

    collect()
    seen: set[int] = set()
    for body in bodies:
        for path in ("/2/httpapi", "/batch"):
            response = await analytics.post(path, json=body)
            assert response.status_code in (200, 400, 429), (body, response.text)
            assert response.json()["code"] == response.status_code
            seen.add(response.status_code)
    assert seen >= {200, 400}
