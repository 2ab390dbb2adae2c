"""Helpers for segment tests: evaluate a definition straight against the database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cohortbridge.db.engine import Database
from cohortbridge.engage.segments.logic.parse import parse
from cohortbridge.engage.segments.repository import audience
from cohortbridge.engage.users.service.export import export_users


async def members(
    db: Database, workspace_id: str, definition: Any, now: datetime | None = None
) -> set[str]:
    """External ids of the profiles a definition selects ("-" for anonymous ones), checking
    that the size query agrees with the member pages."""
    tree = parse(definition)
    scope = audience.Scope(db.dialect, workspace_id, now or datetime.now(UTC))
    async with db.read() as conn:
        ids: list[int] = []
        after = 0
        while page := await audience.member_page(conn, tree, scope, after, 2):
            ids.extend(page)
            after = page[-1]
        size = await audience.size(conn, tree, scope)
        users = await export_users(conn, ids, frozenset({"external_id"}))
    assert size == len(ids)
    return {user.get("external_id", "-") for user in users}


def attribute(name: str, comparison: str, value: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"custom_attribute_name": name, "comparison": comparison}
    if value is not None:
        body["value"] = value
    return {"custom_attribute": body}
