"""Tables of projects: their keys and per-project event settings."""

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    PrimaryKeyConstraint,
    String,
    Table,
)

from cohortbridge.analytics.metadata import metadata
from cohortbridge.db.types import BigId, UTCDateTime

projects = Table(
    "projects",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    # The API key is public (SDKs embed it in apps); only the secret key is kept as a digest.
    Column("api_key", String(64), nullable=False, unique=True),
    Column("secret_digest", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Event types marked inactive do not make a user active (spec amplitude §6.3).
event_types = Table(
    "event_types",
    metadata,
    Column("project_id", BigId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("event_type", String(1024), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("project_id", "event_type"),
)
