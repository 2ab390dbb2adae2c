"""Tables of workspaces, apps and REST API keys."""

from sqlalchemy import Column, ForeignKey, Index, String, Table

from cohortbridge.db.types import JSONDoc, UTCDateTime
from cohortbridge.engage.metadata import metadata

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

apps = Table(
    "apps",
    metadata,
    # The "App Identifier" of Braze: public, not a secret.
    Column("id", String(36), primary_key=True),
    Column(
        "workspace_id", String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    ),
    Column("name", String(255), nullable=False),
    Column("platform", String(32), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index(None, "workspace_id"),
)

rest_api_keys = Table(
    "rest_api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "workspace_id", String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    ),
    Column("name", String(255), nullable=False),
    Column("key_digest", String(64), nullable=False, unique=True),
    Column("key_hint", String(8), nullable=False),
    Column("permissions", JSONDoc, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=True),
    Index(None, "workspace_id"),
)
