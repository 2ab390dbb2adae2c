"""Wire shapes of the /users/* endpoints, for the OpenAPI document.

Bodies are parsed by hand (``logic/``) so that every malformed field becomes Braze's per-object
error rather than a framework 422; these models describe the same shapes for readers and
client generators.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class UserAlias(BaseModel):
    alias_name: str
    alias_label: str


class _Identified(BaseModel):
    model_config = ConfigDict(extra="allow")

    external_id: str | None = Field(None, description="≤ 987 bytes")
    user_alias: UserAlias | None = None
    braze_id: str | None = None
    email: str | None = Field(None, description="lookup key only when no primary id is given")
    phone: str | None = None
    update_existing_only: bool | None = Field(None, alias="_update_existing_only")


class AttributesObject(_Identified):
    """Standard fields and custom attributes; any other key is a custom attribute."""

    merge_objects: bool | None = Field(None, alias="_merge_objects")
    push_token_import: bool | None = None
    push_tokens: list[dict[str, Any]] | None = None


class EventObject(_Identified):
    app_id: str | None = None
    name: str
    time: str = Field(description="ISO-8601; future times become now")
    properties: dict[str, Any] | None = None


class PurchaseObject(_Identified):
    app_id: str | None = None
    product_id: str
    currency: str = Field(description="ISO 4217 alphabetic code")
    price: float
    quantity: int | None = Field(None, ge=1, le=100)
    time: str
    properties: dict[str, Any] | None = None


class TrackRequest(BaseModel):
    attributes: list[AttributesObject] | None = Field(None, max_length=75)
    events: list[EventObject] | None = Field(None, max_length=75)
    purchases: list[PurchaseObject] | None = Field(None, max_length=75)


class ObjectError(BaseModel):
    type: str
    input_array: str
    index: int


class TrackResponse(BaseModel):
    message: str
    attributes_processed: int | None = None
    events_processed: int | None = None
    purchases_processed: int | None = None
    errors: list[ObjectError] | None = None


class ExportIdsRequest(BaseModel):
    external_ids: list[str] | None = Field(None, max_length=50)
    user_aliases: list[UserAlias] | None = Field(None, max_length=50)
    device_id: str | None = None
    braze_id: str | None = None
    email_address: str | None = None
    phone: str | None = None
    fields_to_export: list[str] | None = None


class ExportIdsResponse(BaseModel):
    message: str
    users: list[dict[str, Any]]
    invalid_user_ids: list[str] | None = None


class SessionRequest(BaseModel):
    app_id: str = Field(description="the App Identifier (public), which names the workspace")
    device_id: str = Field(description="1 to 255 bytes")
    external_id: str | None = Field(None, description="the user now on this device, if known")


class Message(BaseModel):
    message: str


# Schemas referenced by hand-documented request bodies; merged into the OpenAPI components.
COMPONENTS: dict[str, Any] = {}


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    COMPONENTS.update(schema.pop("$defs", {}))
    COMPONENTS[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def documented_errors() -> dict[int | str, dict[str, Any]]:
    return {
        code: {"model": Message, "description": text}
        for code, text in (
            (400, "Bad Request / Braze's validation message"),
            (401, "Invalid API Key"),
            (403, "Access Denied (the key lacks the permission)"),
            (413, "Request Entity Too Large (over 4 MB)"),
            (429, "Rate Limited"),
        )
    }


def documented(request: type[BaseModel], response: type[BaseModel], status: int) -> dict[str, Any]:
    """Route keyword arguments that document a hand-parsed JSON body and its answers."""
    errors = documented_errors()
    return {
        "status_code": status,
        "response_model": None,
        "responses": {status: {"model": response, "description": "success"}, **errors},
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": body_schema(request)}},
            }
        },
    }
