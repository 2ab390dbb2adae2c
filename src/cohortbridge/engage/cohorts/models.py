"""Tables of imported cohorts and their members."""

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from cohortbridge.db.types import BigId, UTCDateTime
from cohortbridge.engage.metadata import metadata

cohorts = Table(
    "cohorts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "workspace_id", String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    ),
    Column("partner", String(64), ForeignKey("partners.slug", ondelete="CASCADE"), nullable=False),
    Column("cohort_id", String(255), nullable=False),
    # Users may arrive before the name: both stay NULL until the name endpoint is called.
    Column("name", Text, nullable=True),
    Column("partner_created_at", UTCDateTime(), nullable=True),
    # Bumped by every users request; members carry the version that added them, so a
    # request can tell the rows it inserted from those that were there (see the repository).
    Column("version", BigInteger, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("workspace_id", "partner", "cohort_id"),
)

cohort_members = Table(
    "cohort_members",
    metadata,
    Column("cohort", BigId, ForeignKey("cohorts.id", ondelete="CASCADE"), nullable=False),
    Column("profile_id", BigId, ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False),
    Column("added_at", UTCDateTime(), nullable=False),
    Column("added_in", BigInteger, nullable=False),
    PrimaryKeyConstraint("cohort", "profile_id"),
    # Deletes and merges of a profile find its memberships through this index.
    Index(None, "profile_id"),
)
