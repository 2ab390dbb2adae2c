"""Cohort listings for the CLI and dashboard."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class CohortListing(BaseModel):
    partner: str
    cohort_id: str
    name: str | None
    title: str
    size: int
    created_at: datetime
    updated_at: datetime
