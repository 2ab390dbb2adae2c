"""What the partner services hand to the CLI and (later) the dashboard."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class PartnerKey(BaseModel):
    partner: str
    partner_api_key: str


class CreatedImportKey(BaseModel):
    id: str
    data_import_key: str
    rest_endpoint: str


class ImportKeyListing(BaseModel):
    id: str
    key: str
    status: Literal["active", "invalidated"]
    created_at: datetime
    last_used_at: datetime | None
    invalidated_at: datetime | None


class PartnerPage(BaseModel):
    """Braze's "Partner Integrations → Technology Partners → <partner>" page."""

    partner: str
    display_name: str
    rest_endpoint: str
    keys: list[ImportKeyListing]
