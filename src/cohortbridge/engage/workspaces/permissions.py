"""Braze REST API key permission names (spec braze §3.1, B-BASICS)."""

from __future__ import annotations

USER_DATA = (
    "users.track",
    "users.track.sync",
    "users.delete",
    "users.alias.new",
    "users.alias.update",
    "users.identify",
    "users.export.ids",
    "users.export.segment",
    "users.merge",
    "users.external_ids.rename",
    "users.external_ids.remove",
    "users.export.global_control_group",
)
SEGMENTS = (
    "segments.list",
    "segments.data_series",
    "segments.details",
    # Our own segment-definition endpoints (docs/compatibility.md).
    "segments.create",
    "segments.update",
    "segments.archive",
)
CAMPAIGNS = (
    "campaigns.list",
    "campaigns.details",
    "campaigns.data_series",
    "campaigns.trigger.send",
    "messages.send",
)

ALL: tuple[str, ...] = USER_DATA + SEGMENTS + CAMPAIGNS
KNOWN = frozenset(ALL)


def unknown(permissions: list[str]) -> list[str]:
    return [p for p in permissions if p not in KNOWN]
