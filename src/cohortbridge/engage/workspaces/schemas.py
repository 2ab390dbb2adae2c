"""What the workspace services hand back to the CLI (and later the dashboard)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class Bootstrapped(BaseModel):
    workspace_id: str
    app_id: str
    rest_api_key: str
    rest_endpoint: str


class CreatedKey(BaseModel):
    rest_api_key: str
    id: str


class KeyListing(BaseModel):
    id: str
    name: str
    key: str
    permissions: list[str]
    created_at: datetime
    last_seen_at: datetime | None


class WorkspaceListing(BaseModel):
    id: str
    name: str
    created_at: datetime
