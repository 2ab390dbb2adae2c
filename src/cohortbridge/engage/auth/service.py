"""Who is calling: a REST API key resolved to its workspace and permissions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from cohortbridge.db.unit import Executor
from cohortbridge.engage.errors import ACCESS_DENIED, INVALID_API_KEY, BrazeError
from cohortbridge.engage.workspaces import repository as keys
from cohortbridge.kit import secrets
from cohortbridge.kit.clock import utcnow

# "Last seen" is kept to the minute: writing it on every request would cost a write each.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    key_id: str
    workspace_id: str
    permissions: frozenset[str]
    stale_last_seen: bool
    # The key's label: writes through /users/track are counted under it in the ledger, so each
    # integration (an event stream, a property sync) shows as its own source.
    key_name: str = ""


def authenticate(ex: Executor, api_key: str | None, permission: str) -> Principal:
    """Resolve the key (inside ``Database.lookup``)."""
    if not api_key:
        raise BrazeError(401, INVALID_API_KEY)
    row = keys.key_by_digest(ex, secrets.digest(api_key.strip()))
    if row is None:
        raise BrazeError(401, INVALID_API_KEY)
    granted = frozenset(row["permissions"])
    if permission not in granted:
        raise BrazeError(403, ACCESS_DENIED)
    last = row["last_seen_at"]
    return Principal(
        key_id=row["id"],
        workspace_id=row["workspace_id"],
        permissions=granted,
        stale_last_seen=last is None or utcnow() - last > LAST_SEEN_RESOLUTION,
        key_name=row["name"] or "",
    )


def record_use(ex: Executor, principal: Principal) -> None:
    if principal.stale_last_seen:
        keys.touch_key(ex, principal.key_id, utcnow())
