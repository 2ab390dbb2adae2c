"""Wire shapes of the ingestion endpoints, for the OpenAPI document (bodies are parsed by hand
so every error is Amplitude-shaped)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EventIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    event_type: str
    user_id: str | None = Field(None, description="≥ 5 characters unless options.min_id_length")
    device_id: str | None = Field(None, description="defaults to a hash of user_id")
    time: int | None = Field(None, description="milliseconds since the epoch")
    event_properties: dict[str, Any] | None = None
    user_properties: dict[str, Any] | None = Field(None, description="plain, or $set/$add/… ops")
    insert_id: str | None = Field(None, description="de-duplicated per device over 7 days")
    session_id: int | None = None


class UploadRequest(BaseModel):
    api_key: str
    events: list[EventIn]
    options: dict[str, Any] | None = None


class UploadResponse(BaseModel):
    code: int = 200
    events_ingested: int
    payload_size_bytes: int
    server_upload_time: int


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: int
    error: str


COMPONENTS: dict[str, Any] = {}


def documented() -> dict[str, Any]:
    schema = UploadRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    COMPONENTS.update(schema.pop("$defs", {}))
    COMPONENTS["UploadRequest"] = schema
    errors = {
        400: "invalid request or events (index maps)", 413: "Payload too large",
        429: "Too many requests for some devices and users",
    }  # fmt: skip
    return {
        "response_model": None,
        "responses": {200: {"model": UploadResponse, "description": "success"},
                      **{c: {"model": ErrorBody, "description": t} for c, t in errors.items()}},
        "openapi_extra": {"requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/UploadRequest"}}}}},
    }  # fmt: skip
