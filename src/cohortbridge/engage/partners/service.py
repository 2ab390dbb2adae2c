"""Partners and keys: what the CLI and the dashboard call. Never commits."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.db.unit import Executor
from cohortbridge.engage.errors import BrazeError, NotFoundError
from cohortbridge.engage.partners import repository as repo
from cohortbridge.engage.partners.schemas import (
    CreatedImportKey,
    ImportKeyListing,
    PartnerKey,
    PartnerPage,
)
from cohortbridge.kit import secrets
from cohortbridge.kit.clock import utcnow

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
LAST_USED_RESOLUTION = timedelta(minutes=1)

INVALID_PARTNER_KEY = "Invalid Partner API key"
INVALID_CLIENT_SECRET = "Invalid client secret"
UNAUTHORIZED = "Unauthorized access"


async def get_partner(conn: AsyncConnection, slug: str) -> RowMapping:
    found = await repo.get_partner(conn, slug)
    if found is None:
        raise NotFoundError(
            f"No partner {slug!r}. Add it with `cohortbridge engage partners create "
            f"--partner {slug}`."
        )
    return found


async def create_partner_key(
    conn: AsyncConnection, slug: str, display_name: str | None = None, *, rotate: bool = False
) -> PartnerKey:
    """Register the partner if new and issue it a key; ``rotate`` revokes its older keys."""
    if not SLUG.match(slug):
        raise ValueError(f"{slug!r} is not a partner slug: use lower-case letters, digits, - or _")
    now = utcnow()
    name = display_name or slug.replace("_", " ").replace("-", " ").title()
    await repo.add_partner(conn, {"slug": slug, "display_name": name, "created_at": now})
    key = secrets.new_uuid_key()
    key_id = str(uuid.uuid4())
    await repo.insert_partner_key(
        conn,
        {"id": key_id, "partner": slug, "key_digest": secrets.digest(key),
         "key_hint": key[-4:], "created_at": now},
    )  # fmt: skip
    if rotate:
        await repo.revoke_partner_keys(conn, slug, now, keep_id=key_id)
    return PartnerKey(partner=slug, partner_api_key=key)


async def create_import_key(
    conn: AsyncConnection, workspace_id: str, partner: str, rest_endpoint: str
) -> CreatedImportKey:
    await get_partner(conn, partner)
    key = secrets.new_uuid_key()
    key_id = str(uuid.uuid4())
    await repo.insert_import_key(
        conn,
        {"id": key_id, "workspace_id": workspace_id, "partner": partner,
         "key_digest": secrets.digest(key), "key_hint": key[-4:], "created_at": utcnow()},
    )  # fmt: skip
    return CreatedImportKey(id=key_id, data_import_key=key, rest_endpoint=rest_endpoint)


async def list_import_keys(
    conn: AsyncConnection, workspace_id: str, partner: str
) -> list[ImportKeyListing]:
    await get_partner(conn, partner)
    return [
        ImportKeyListing(
            id=row["id"],
            key=secrets.mask("x" * 32 + row["key_hint"]),
            status="invalidated" if row["invalidated_at"] else "active",
            created_at=row["created_at"],
            last_used_at=row["last_used_at"],
            invalidated_at=row["invalidated_at"],
        )
        for row in await repo.list_import_keys(conn, workspace_id, partner)
    ]


async def invalidate_import_key(
    conn: AsyncConnection, workspace_id: str, partner: str, key_id: str
) -> None:
    if not await repo.invalidate_import_key(conn, workspace_id, partner, key_id, utcnow()):
        raise NotFoundError(
            f"No active data import key {key_id!r} for {partner} in this workspace; "
            "`cohortbridge engage import-keys list` shows them."
        )


async def partner_page(
    conn: AsyncConnection, workspace_id: str, partner: str, rest_endpoint: str
) -> PartnerPage:
    found = await get_partner(conn, partner)
    return PartnerPage(
        partner=partner,
        display_name=found["display_name"],
        rest_endpoint=rest_endpoint,
        keys=await list_import_keys(conn, workspace_id, partner),
    )


@dataclass(frozen=True)
class PartnerClient:
    """A verified partner request: which workspace it writes to, with which key."""

    partner: str
    workspace_id: str
    import_key_id: str
    stale_last_used: bool


def authenticate(
    ex: Executor, partner: str, partner_api_key: object, client_secret: object
) -> PartnerClient:
    """Check both keys of a partner request (spec braze §1.3, §1.6), before its body
    (inside ``Database.lookup``)."""
    if not isinstance(partner_api_key, str) or not partner_api_key:
        raise BrazeError(401, INVALID_PARTNER_KEY)
    key = repo.partner_key_by_digest(ex, secrets.digest(partner_api_key))
    if key is None:
        raise BrazeError(401, INVALID_PARTNER_KEY)
    if key["partner"] != partner:
        raise BrazeError(401, UNAUTHORIZED)
    if not isinstance(client_secret, str) or not client_secret:
        raise BrazeError(401, INVALID_CLIENT_SECRET)
    secret = repo.import_key_by_digest(ex, secrets.digest(client_secret))
    if secret is None:
        raise BrazeError(401, INVALID_CLIENT_SECRET)
    if secret["partner"] != partner:
        raise BrazeError(401, f"Partner not enabled for client with client secret: {client_secret}")
    last = secret["last_used_at"]
    return PartnerClient(
        partner=partner,
        workspace_id=secret["workspace_id"],
        import_key_id=secret["id"],
        stale_last_used=last is None or utcnow() - last > LAST_USED_RESOLUTION,
    )


def record_use(ex: Executor, client: PartnerClient) -> None:
    if client.stale_last_used:
        repo.touch_import_key(ex, client.import_key_id, utcnow())
