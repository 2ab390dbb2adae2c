"""Workspaces, apps and REST API keys: creation and lookup. Never commits."""

from __future__ import annotations

import uuid

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.engage.errors import NotFoundError
from cohortbridge.engage.workspaces import permissions as perms
from cohortbridge.engage.workspaces import repository as repo
from cohortbridge.engage.workspaces.schemas import (
    Bootstrapped,
    CreatedKey,
    KeyListing,
    WorkspaceListing,
)
from cohortbridge.kit import secrets
from cohortbridge.kit.clock import utcnow


async def get_workspace(conn: AsyncConnection, ref: str) -> RowMapping:
    found = await repo.find_workspace(conn, ref)
    if found is None:
        raise NotFoundError(
            f"No workspace {ref!r}. Create one with `cohortbridge engage bootstrap "
            f"--workspace {ref!r}`."
        )
    return found


async def ensure_workspace(conn: AsyncConnection, name: str) -> tuple[RowMapping, bool]:
    """The workspace of that name, created with one web app if missing."""
    if not name.strip() or len(name) > 240:
        raise ValueError("A workspace name is 1 to 240 characters.")
    found = await repo.find_workspace(conn, name)
    if found is not None:
        return found, False
    now = utcnow()
    workspace_id = str(uuid.uuid4())
    await repo.insert_workspace(conn, {"id": workspace_id, "name": name, "created_at": now})
    await repo.insert_app(
        conn,
        {
            "id": str(uuid.uuid4()),
            "workspace_id": workspace_id,
            "name": f"{name} Web",
            "platform": "web",
            "created_at": now,
        },
    )
    return await get_workspace(conn, workspace_id), True


async def create_api_key(
    conn: AsyncConnection, workspace_id: str, permissions: list[str], name: str = ""
) -> CreatedKey:
    bad = perms.unknown(permissions)
    if bad:
        raise ValueError(f"Unknown permission(s) {', '.join(bad)}; known: {', '.join(perms.ALL)}")
    key = secrets.new_uuid_key()
    key_id = str(uuid.uuid4())
    await repo.insert_key(
        conn,
        {
            "id": key_id,
            "workspace_id": workspace_id,
            "name": name or f"key {key[-4:]}",
            "key_digest": secrets.digest(key),
            "key_hint": key[-4:],
            "permissions": sorted(set(permissions)),
            "created_at": utcnow(),
        },
    )
    return CreatedKey(rest_api_key=key, id=key_id)


async def bootstrap(conn: AsyncConnection, name: str, rest_endpoint: str) -> Bootstrapped:
    workspace, _ = await ensure_workspace(conn, name)
    app = await repo.first_app(conn, workspace["id"])
    assert app is not None, "every workspace is created with an app"
    key = await create_api_key(conn, workspace["id"], list(perms.ALL), name="bootstrap")
    return Bootstrapped(
        workspace_id=workspace["id"],
        app_id=app["id"],
        rest_api_key=key.rest_api_key,
        rest_endpoint=rest_endpoint,
    )


async def list_api_keys(conn: AsyncConnection, workspace_id: str) -> list[KeyListing]:
    return [
        KeyListing(
            id=row["id"],
            name=row["name"],
            key=secrets.mask("x" * 32 + row["key_hint"]),
            permissions=list(row["permissions"]),
            created_at=row["created_at"],
            last_seen_at=row["last_seen_at"],
        )
        for row in await repo.list_keys(conn, workspace_id)
    ]


async def list_workspaces(conn: AsyncConnection) -> list[WorkspaceListing]:
    return [WorkspaceListing(**dict(row)) for row in await repo.list_workspaces(conn)]
