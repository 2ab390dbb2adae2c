"""engage's OpenAPI document describes its endpoints and every reference in it resolves."""

import json
import re

import httpx


async def test_openapi_documents_users_endpoints(engage: httpx.AsyncClient) -> None:
    response = await engage.get("/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    for path in ("/users/track", "/users/export/ids"):
        operation = schema["paths"][path]["post"]
        assert "requestBody" in operation
        assert {"401", "403", "429"} <= set(operation["responses"])
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(schema)))
    assert refs <= set(schema["components"]["schemas"])
