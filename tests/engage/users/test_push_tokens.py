"""Devices arrive through push tokens and push-token imports (spec braze §3.3.1, §4)."""

from typing import Any

import httpx
import pytest

from tests.engage.users.helpers import export, one, track


def token(
    app_id: str, device_id: str | None = "device-0001", value: str = "tok-1"
) -> dict[str, Any]:
    item = {"app_id": app_id, "token": value}
    if device_id is not None:
        item["device_id"] = device_id
    return item


async def test_push_token_import_creates_anonymous_profile_with_device(
    engage: httpx.AsyncClient, auth: dict[str, str], workspace: dict[str, Any]
) -> None:
    alias = {"alias_name": "anon-1", "alias_label": "amplitude_device"}
    response = await track(engage, auth, attributes=[{
        "push_token_import": True, "push_tokens": [token(workspace["app_id"])], "user_alias": alias,
    }])  # fmt: skip
    assert response.status_code == 201, response.text
    users = await export(engage, auth, device_id="device-0001")
    assert len(users) == 1
    user = users[0]
    assert "external_id" not in user
    assert user["devices"] == [{"device_id": "device-0001"}]
    assert user["user_aliases"] == [alias]
    assert user["push_tokens"][0]["token"] == "tok-1"

    # The same token imported again is ignored: no second profile.
    await track(engage, auth, attributes=[{
        "push_token_import": True, "push_tokens": [token(workspace["app_id"])], "flag": 1,
    }])  # fmt: skip
    again = await export(engage, auth, device_id="device-0001")
    assert again[0]["braze_id"] == user["braze_id"]
    assert "custom_attributes" not in again[0]


async def test_random_device_id_when_none_given(
    engage: httpx.AsyncClient, auth: dict[str, str], workspace: dict[str, Any]
) -> None:
    await track(engage, auth, attributes=[{
        "external_id": "pt", "push_tokens": [token(workspace["app_id"], device_id=None)],
    }])  # fmt: skip
    user = await one(engage, auth, "pt")
    assert len(user["devices"]) == 1
    assert len(user["devices"][0]["device_id"]) >= 8


@pytest.mark.parametrize(
    ("obj", "error"),
    [
        ({"push_token_import": True, "external_id": "x", "push_tokens": "APP"}, "BAD_PUSH_TOKEN_VALUE"),
        ({"push_token_import": True, "external_id": "x", "push_tokens": [token("APP")]}, "BAD_PUSH_TOKEN_IMPORT"),
        ({"push_token_import": True, "push_tokens": []}, "BAD_PUSH_TOKEN_IMPORT"),
        ({"push_token_import": True, "push_tokens": [{"app_id": "APP"}]}, "BAD_PUSH_TOKEN_STRING"),
        ({"push_token_import": True, "push_tokens": [token("APP", device_id="short")]}, "BAD_DEVICE_ID"),
        ({"push_token_import": True, "push_tokens": [token("unknown-app")]}, "BAD_PUSH_TOKEN_APP_ID"),
        ({"external_id": "x", "push_tokens": [{"token": "t"}]}, "BAD_PUSH_TOKEN_APP_ID"),
    ],
)  # fmt: skip
async def test_push_token_errors(
    engage: httpx.AsyncClient,
    auth: dict[str, str],
    workspace: dict[str, Any],
    obj: dict[str, Any],
    error: str,
) -> None:
    def with_app(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: (workspace["app_id"] if v == "APP" else with_app(v)) for k, v in value.items()
            }
        if isinstance(value, list):
            return [with_app(v) for v in value]
        return value

    response = await track(engage, auth, attributes=[{"external_id": "fine"}, with_app(obj)])
    assert response.status_code == 201, response.text
    assert response.json()["errors"] == [{"type": error, "input_array": "attributes", "index": 1}]
    assert response.json()["attributes_processed"] == 1
