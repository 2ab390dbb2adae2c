"""A Braze API client from PyPI (``braze-client``) against a real engage server on loopback."""

import asyncio
from typing import Any

import pytest
from braze.client import BrazeClient, BrazeClientError

from tests.conftest import LiveServer


def _client(server: LiveServer, key: str, use_auth_header: bool = True) -> Any:
    return BrazeClient(api_key=key, api_url=server.url, use_auth_header=use_auth_header)


async def test_braze_client_tracks_exports_and_deletes(
    live_engage: LiveServer, workspace: dict[str, Any]
) -> None:
    client = _client(live_engage, workspace["rest_api_key"])
    tracked = await asyncio.to_thread(
        client.user_track,
        attributes=[{"external_id": "bc-1", "first_name": "Grace", "plan": "team"}],
        events=[{"external_id": "bc-1", "name": "login", "time": "2026-11-01T10:00:00Z"}],
    )
    assert tracked["success"] is True, tracked
    assert tracked["status_code"] == 201
    assert tracked["attributes_processed"] == 1
    assert tracked["events_processed"] == 1

    exported = await asyncio.to_thread(
        client.user_export,
        external_ids=["bc-1"],
        fields_to_export=["first_name", "custom_attributes"],
    )
    assert exported["users"] == [{"first_name": "Grace", "custom_attributes": {"plan": "team"}}]


async def test_braze_client_with_key_in_body_and_bad_key(
    live_engage: LiveServer, workspace: dict[str, Any]
) -> None:
    legacy = _client(live_engage, workspace["rest_api_key"], use_auth_header=False)
    tracked = await asyncio.to_thread(legacy.user_track, attributes=[{"external_id": "bc-2"}])
    assert tracked["success"] is True, tracked

    wrong = _client(live_engage, "not-a-key")
    with pytest.raises(BrazeClientError) as refused:
        await asyncio.to_thread(wrong.user_track, attributes=[{"external_id": "bc-3"}])
    assert refused.value.args[0] == "Invalid API Key"

    # A fatal 400 reaches the client as Braze's message and per-object errors.
    with pytest.raises(BrazeClientError) as rejected:
        await asyncio.to_thread(legacy.user_track, attributes=[{"first_name": "no id"}])
    assert rejected.value.args[0].startswith("Valid data must be provided")
    assert rejected.value.args[1][0]["input_array"] == "attributes"
