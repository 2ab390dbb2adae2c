"""Wire shapes of the segment endpoints, for the OpenAPI document (bodies are parsed by hand
in the service so every error is Braze-shaped; see docs/api.md for the filter vocabulary)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

FILTER_HELP = (
    "A definition in Braze's JSON filter vocabulary: AND / OR / NOT groups of filters such as "
    "amplitude_cohorts, custom_attribute, custom_event, purchase, external_id, … (docs/api.md)"
)


class Message(BaseModel):
    message: str


class SegmentCreate(BaseModel):
    name: str = Field(max_length=255)
    filter: dict[str, Any] = Field(description=FILTER_HELP)
    description: str | None = Field(None, description="free text (text_description)")
    tags: list[str] | None = None
    analytics_tracking_enabled: bool | None = None


class SegmentUpdate(BaseModel):
    segment_id: str
    name: str | None = None
    filter: dict[str, Any] | None = Field(None, description=FILTER_HELP)
    description: str | None = None
    tags: list[str] | None = None
    analytics_tracking_enabled: bool | None = None


class SegmentRef(BaseModel):
    segment_id: str


class SegmentWritten(BaseModel):
    message: str = "success"
    segment_id: str


class SegmentBody(BaseModel):
    id: str
    name: str
    filter: dict[str, Any]
    description: str = Field(description="the definition in words")
    text_description: str | None
    tags: list[str]
    analytics_tracking_enabled: bool
    archived: bool
    created_at: str
    updated_at: str


class SegmentGot(BaseModel):
    message: str = "success"
    segment: SegmentBody


class SegmentSize(BaseModel):
    message: str = "success"
    segment_id: str
    size: int


class SegmentListed(BaseModel):
    id: str
    name: str
    analytics_tracking_enabled: bool
    tags: list[str]


class SegmentList(BaseModel):
    message: str = "success"
    segments: list[SegmentListed]


class SegmentDetails(BaseModel):
    message: str = "success"
    created_at: str
    updated_at: str
    name: str
    description: str
    text_description: str | None
    tags: list[str]
    teams: list[str]


class ExportSegmentRequest(BaseModel):
    segment_id: str
    callback_endpoint: str | None = None
    fields_to_export: list[str]
    custom_attributes_to_export: list[str] | None = Field(None, max_length=500)
    output_format: str | None = Field("zip", description="zip (gzip needs a bucket of your own)")


class ExportSegmentResponse(BaseModel):
    message: str = "success"
    object_prefix: str
    url: str
