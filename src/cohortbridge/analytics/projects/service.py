"""Projects: creation, keys and event-type activity. Never commits."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.analytics.projects import repository as repo
from cohortbridge.kit.clock import utcnow
from cohortbridge.kit.secrets import digest


class CreatedProject(BaseModel):
    project_id: int
    api_key: str
    secret_key: str


class ProjectListing(BaseModel):
    project_id: int
    name: str
    api_key: str


@dataclass(frozen=True)
class Project:
    id: int
    name: str


class ProjectNotFound(LookupError):
    pass


def new_key() -> str:
    """Amplitude's key shape: 32 hex characters."""
    return secrets.token_hex(16)


async def create_project(conn: AsyncConnection, name: str) -> CreatedProject:
    name = name.strip()
    if not name or len(name) > 255:
        raise ValueError("a project name is 1 to 255 characters")
    if await repo.by_name(conn, name) is not None:
        raise ValueError(f"a project named {name!r} exists; choose another name")
    api_key, secret_key = new_key(), new_key()
    project_id = await repo.insert_project(conn, {
        "name": name, "api_key": api_key, "secret_digest": digest(secret_key),
        "created_at": utcnow(),
    })  # fmt: skip
    return CreatedProject(project_id=project_id, api_key=api_key, secret_key=secret_key)


async def list_projects(conn: AsyncConnection) -> list[ProjectListing]:
    return [
        ProjectListing(project_id=row["id"], name=row["name"], api_key=row["api_key"])
        for row in await repo.all_projects(conn)
    ]


async def by_api_key(conn: AsyncConnection, api_key: str) -> Project | None:
    row = await repo.by_api_key(conn, api_key)
    return Project(row["id"], row["name"]) if row is not None else None


async def by_secret_key(conn: AsyncConnection, secret_key: str) -> Project | None:
    row = await repo.by_secret_digest(conn, digest(secret_key))
    return Project(row["id"], row["name"]) if row is not None else None


async def find(conn: AsyncConnection, name_or_id: str) -> Project:
    row = await repo.by_name(conn, name_or_id)
    if row is None and name_or_id.isdigit():
        row = await repo.by_id(conn, int(name_or_id))
    if row is None:
        raise ProjectNotFound(
            f"no project {name_or_id!r}; `cohortbridge analytics project list` shows them"
        )
    return Project(row["id"], row["name"])


async def set_event_activity(
    conn: AsyncConnection, project_id: int, event_type: str, active: bool
) -> None:
    """Mark an event type active or inactive (inactive events don't make users active)."""
    await repo.set_activity(conn, project_id, event_type, active, utcnow())


async def by_credentials(conn: AsyncConnection, api_key: str, secret_key: str) -> Project | None:
    """Basic auth ``api_key:secret_key`` of the cohort and dashboard APIs."""
    project = await by_secret_key(conn, secret_key)
    if project is None or await repo.by_api_key(conn, api_key) is None:
        return None
    row = await repo.by_api_key(conn, api_key)
    return project if row is not None and row["id"] == project.id else None
