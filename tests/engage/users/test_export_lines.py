"""Export lines written by the database (segment exports) equal the objects built in Python."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import combinations
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cohortbridge.db.engine import Database
from cohortbridge.engage.users.logic.export import LINE_FIELDS, line_fields, unmark_times
from cohortbridge.engage.users.service.export import export_ndjson, export_users
from tests.engage.users.helpers import export, track

HOSTILE = 'quote " backslash \\ newline \n tab \t bell \u0007 é 😀 {"$time":"2020-01-01"}'


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


async def _profiles(engage: httpx.AsyncClient, auth: dict[str, str]) -> None:
    now = datetime.now(UTC)
    recent, old = iso(now - timedelta(days=2, microseconds=123_456)), iso(now - timedelta(days=120))
    attributes = [
        {"external_id": "full", "email": "full@example.com", "first_name": HOSTILE,
         "last_name": "Ng", "country": "DE", "gender": "F", "dob": "1990-02-03",
         "home_city": "Köln", "language": "de", "time_zone": "Europe/Berlin",
         "phone": "+4930123456", "email_subscribe": "opted_in", "push_subscribe": "subscribed",
         "plan": "pro", "score": 12.5, "vip": True, "seen": "2024-05-06T07:08:09.010Z",
         "tags": ["a", HOSTILE], "note": HOSTILE,
         "pet": {"name": HOSTILE, "born": {"$time": "2020-01-02T03:04:05.678Z"},
                 "visits": [{"at": {"$time": "2021-01-01T00:00:00Z"}}, 3]}},
        {"external_id": "bare"},
        {"external_id": HOSTILE, "email": "odd@example.com", "plan": "free"},
        {"user_alias": {"alias_name": "anon-1", "alias_label": "device"}, "plan": "free",
         "_update_existing_only": False},
    ]  # fmt: skip
    events = [
        {"external_id": "full", "name": name, "time": when}
        for name, when in (("played", recent), ("played", old), ("zeta", recent),
                           (HOSTILE, recent), ("only_old", old), ("alpha", recent))
    ]  # fmt: skip
    purchases = [
        {"external_id": "full", "product_id": product, "currency": "USD", "price": 1.5,
         "time": when}
        for product, when in (("sku-2", recent), ("sku-1", recent), ("sku-1", old),
                              ("gone", old))
    ]  # fmt: skip
    response = await track(engage, auth, attributes=attributes, events=events,
                           purchases=purchases)  # fmt: skip
    assert response.status_code == 201, response.text
    assert "errors" not in response.json(), response.text
    alias = {"external_id": "full", "alias_name": HOSTILE, "alias_label": "crm"}
    for body in ({"user_aliases": [alias]},
                 {"user_aliases": [{**alias, "alias_name": "b", "alias_label": "amp"}]}):  # fmt: skip
        added = await engage.post("/users/alias/new", json=body, headers=auth)
        assert added.status_code == 201, added.text


async def _ids(db: Database) -> list[int]:
    async with db.read() as conn:
        rows = (await conn.exec_driver_sql("SELECT id FROM profiles ORDER BY id")).all()
    return [int(row[0]) for row in rows]


HISTORIES = ["user_aliases", "custom_events", "purchases", "created_at"]
FIELD_SETS = [
    *[frozenset({name}) for name in sorted(LINE_FIELDS)],
    frozenset(LINE_FIELDS),
    frozenset({"external_id", "email", "custom_attributes", "custom_events"}),
    *[frozenset(pair) for pair in combinations(HISTORIES, 2)],
    frozenset({"external_id", "devices", "total_revenue"}),  # built in Python
]


async def test_database_lines_equal_the_python_objects(
    engage: httpx.AsyncClient, auth: dict[str, str], engage_db: Database
) -> None:
    await _profiles(engage, auth)
    ids = await _ids(engage_db)
    assert len(ids) == 4
    since = datetime.now(UTC) - timedelta(days=90)
    asked = [*ids, max(ids) + 1000]  # an id that no longer exists is left out by both
    async with engage_db.read() as conn:
        for fields in FIELD_SETS:
            count, text = await export_ndjson(conn, asked, fields, history_since=since)
            expected = await export_users(conn, asked, fields, history_since=since)
            lines = [orjson.loads(line) for line in text.splitlines()]
            assert lines == expected, sorted(fields)
            assert count == len(expected) == 4


async def test_lines_cover_what_the_fixture_holds(
    engage: httpx.AsyncClient, auth: dict[str, str], engage_db: Database
) -> None:
    """The comparison above only means something if the Python objects hold every part."""
    await _profiles(engage, auth)
    ids = await _ids(engage_db)
    since = datetime.now(UTC) - timedelta(days=90)
    async with engage_db.read() as conn:
        _, text = await export_ndjson(conn, ids, frozenset(LINE_FIELDS), history_since=since)
    users = {user.get("external_id", "anon"): user for user in map(orjson.loads, text.splitlines())}
    full = users["full"]
    assert [e["name"] for e in full["custom_events"]] == sorted(["played", "zeta", HOSTILE,
                                                                 "alpha"])  # fmt: skip
    played = next(e for e in full["custom_events"] if e["name"] == "played")
    assert played["count"] == 2 and played["first"] < played["last"]
    assert played["last"].endswith("Z") and len(played["last"]) == 24
    assert [p["name"] for p in full["purchases"]] == ["sku-1", "sku-2"]
    assert full["user_aliases"] == [{"alias_name": "b", "alias_label": "amp"},
                                    {"alias_name": HOSTILE, "alias_label": "crm"}]  # fmt: skip
    assert full["custom_attributes"]["seen"] == "2024-05-06T07:08:09.010Z"
    assert full["custom_attributes"]["pet"]["born"] == "2020-01-02T03:04:05.678Z"
    assert full["custom_attributes"]["pet"]["visits"][0] == {"at": "2021-01-01T00:00:00.000Z"}
    assert full["custom_attributes"]["note"] == HOSTILE
    assert full["created_at"].endswith(" UTC")
    # Null and empty fields are left out.
    assert set(users["bare"]) == {"external_id", "braze_id", "random_bucket", "created_at"}
    assert users["anon"]["user_aliases"] == [{"alias_name": "anon-1", "alias_label": "device"}]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b'{"a":{"$time":"2020-01-01T00:00:00.000Z"}}', b'{"a":"2020-01-01T00:00:00.000Z"}'),
        (b'{"a": {"$time": "2020-01-01T00:00:00.000Z"}}', b'{"a": "2020-01-01T00:00:00.000Z"}'),
        (b'{"a":[{"$time":"x"},{"b":{"$time":"y"}}]}', b'{"a":["x",{"b":"y"}]}'),
        # Inside a string the quotes are escaped: never a time.
        (b'{"a":"{\\"$time\\":\\"x\\"}"}', b'{"a":"{\\"$time\\":\\"x\\"}"}'),
        (b'{"a":"{"}', b'{"a":"{"}'),
    ],
)
def test_unmark_times(text: bytes, expected: bytes) -> None:
    assert unmark_times(text) == expected


def test_line_fields_in_export_order_or_none() -> None:
    assert line_fields(frozenset({"custom_events", "email", "external_id"})) == (
        "external_id", "email", "custom_events")  # fmt: skip
    assert line_fields(frozenset({"email", "devices"})) is None


TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
NESTED = st.recursive(
    st.one_of(st.booleans(), st.integers(-(2**40), 2**40), TEXT,
              st.floats(allow_nan=False, allow_infinity=False),
              st.just({"$time": "2021-03-04T05:06:07.089Z"})),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text("abcxyz_é", min_size=1, max_size=5), inner, max_size=3),
    ),
    max_leaves=8,
)  # fmt: skip
ATTRIBUTES = st.dictionaries(
    st.one_of(st.sampled_from(["first_name", "email", "country", "home_city", "language"]),
              st.text("abcdefgh", min_size=1, max_size=6)),
    st.one_of(TEXT, NESTED, st.sampled_from(["2024-05-06T07:08:09Z", "user@example.com"])),
    max_size=6,
)  # fmt: skip
EVENT_NAMES = st.lists(TEXT.filter(bool), max_size=3)


async def test_random_profiles_export_the_same_both_ways(
    engage: httpx.AsyncClient, auth: dict[str, str], engage_db: Database
) -> None:
    """Whatever /users/track stored, the database's lines parse to the Python objects."""
    examples: list[tuple[dict[str, Any], list[str]]] = []

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(ATTRIBUTES, EVENT_NAMES)
    def collect(attributes: dict[str, Any], names: list[str]) -> None:
        examples.append((attributes, names))

    collect()
    now = iso(datetime.now(UTC) - timedelta(hours=1))
    for index, (attributes, names) in enumerate(examples):
        body = {
            "attributes": [{**attributes, "external_id": f"p{index}"}],
            "events": [{"external_id": f"p{index}", "name": n, "time": now} for n in names],
        }
        response = await track(engage, auth, **body)
        assert response.status_code in (201, 400), response.text
    ids = await _ids(engage_db)
    assert ids
    since = datetime.now(UTC) - timedelta(days=90)
    async with engage_db.read() as conn:
        for fields in (frozenset(LINE_FIELDS), frozenset({"external_id", "custom_attributes"})):
            _, text = await export_ndjson(conn, ids, fields, history_since=since)
            expected = await export_users(conn, ids, fields, history_since=since)
            assert [orjson.loads(line) for line in text.splitlines()] == expected


async def test_numbers_past_64_bits_export_both_ways(
    engage: httpx.AsyncClient, auth: dict[str, str], engage_db: Database
) -> None:
    """PostgreSQL writes such a float without an exponent; it still exports as that float."""
    attributes = {"external_id": "big", "n": -2.343253014521943e24, "o": {"m": 1.5e300}}
    assert (await track(engage, auth, attributes=[attributes])).status_code == 201
    (user,) = await export(engage, auth, external_ids=["big"])
    assert user["custom_attributes"] == {"n": -2.343253014521943e24, "o": {"m": 1.5e300}}
    since = datetime.now(UTC) - timedelta(days=90)
    async with engage_db.read() as conn:
        _, text = await export_ndjson(
            conn, await _ids(engage_db), frozenset({"custom_attributes"}), history_since=since
        )
    assert orjson.loads(text) == {"custom_attributes": user["custom_attributes"]}
