"""Tables of partners, partner API keys and the workspaces' data import keys."""

from sqlalchemy import Column, ForeignKey, Index, String, Table

from cohortbridge.db.types import UTCDateTime
from cohortbridge.engage.metadata import metadata

partners = Table(
    "partners",
    metadata,
    # The slug of /partners/{partner}/…, e.g. "amplitude".
    Column("slug", String(64), primary_key=True),
    Column("display_name", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Issued to the partner (Braze issues one per cluster); rotated by creating a new one and
# revoking the old.
partner_api_keys = Table(
    "partner_api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("partner", String(64), ForeignKey("partners.slug", ondelete="CASCADE"), nullable=False),
    Column("key_digest", String(64), nullable=False, unique=True),
    Column("key_hint", String(8), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Index(None, "partner"),
)

# The customer's "data import key" (the partner sends it as ``client_secret``): one workspace,
# one partner; several may be active; an invalidated key is refused at once.
data_import_keys = Table(
    "data_import_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "workspace_id", String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    ),
    Column("partner", String(64), ForeignKey("partners.slug", ondelete="CASCADE"), nullable=False),
    Column("key_digest", String(64), nullable=False, unique=True),
    Column("key_hint", String(8), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime(), nullable=True),
    Column("invalidated_at", UTCDateTime(), nullable=True),
    Index(None, "workspace_id", "partner"),
)
