import httpx

from tests.engage.users.helpers import one, track


async def test_track_creates_profile_and_exports(
    engage: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await track(
        engage,
        auth,
        attributes=[{"external_id": "u1", "first_name": "Ada", "plan": "pro", "visits": 3}],
        events=[{"external_id": "u1", "name": "played", "time": "2026-11-01T10:00:00Z"}],
        purchases=[
            {"external_id": "u1", "product_id": "song", "currency": "USD", "price": 1.5,
             "quantity": 2, "time": "2026-11-01T10:00:00Z"}
        ],
    )  # fmt: skip
    assert response.status_code == 201, response.text
    assert response.json() == {
        "message": "success",
        "attributes_processed": 1,
        "events_processed": 1,
        "purchases_processed": 1,
    }
    user = await one(engage, auth, "u1")
    assert user["first_name"] == "Ada"
    assert user["custom_attributes"] == {"plan": "pro", "visits": 3}
    assert user["custom_events"] == [
        {"name": "played", "first": "2026-11-01T10:00:00.000Z",
         "last": "2026-11-01T10:00:00.000Z", "count": 1}
    ]  # fmt: skip
    assert user["purchases"][0]["count"] == 2
    assert user["total_revenue"] == 3.0
    assert len(user["braze_id"]) == 24
