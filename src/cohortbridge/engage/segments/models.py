"""Tables of segments (spec braze §5.1) and their exports (§5.6)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from cohortbridge.db.types import JSONDoc, UTCDateTime
from cohortbridge.engage.metadata import metadata

segments = Table(
    "segments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "workspace_id", String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    ),
    Column("name", String(255), nullable=False),
    # The filter as the client sent it (Braze's JSON vocabulary), validated on the way in.
    Column("definition", JSONDoc, nullable=False),
    Column("text_description", Text, nullable=True),
    Column("tags", JSONDoc, nullable=False),
    Column("analytics_tracking_enabled", Boolean, nullable=False),
    Column("archived_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index(None, "workspace_id", "created_at"),
)

# Which segments a segment's "Segment Membership" filters name: a segment that uses Segment
# Membership cannot itself be named by another (Braze's rule, which rules out cycles).
segment_references = Table(
    "segment_references",
    metadata,
    Column("segment_id", String(36), ForeignKey("segments.id", ondelete="CASCADE"), nullable=False),
    Column("referenced_id", String(36), nullable=False),
    PrimaryKeyConstraint("segment_id", "referenced_id"),
    Index(None, "referenced_id"),
)

segment_exports = Table(
    "segment_exports",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "workspace_id", String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    ),
    Column("segment_id", String(36), ForeignKey("segments.id", ondelete="CASCADE"), nullable=False),
    # Braze's object_prefix: "<uuid>-<epoch seconds when the export started>".
    Column("object_prefix", String(64), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    # The segment's id while the export runs, NULL afterwards: the unique constraint lets one
    # export per segment run at a time on both databases (NULLs never collide).
    Column("running_segment", String(36), nullable=True),
    Column("fields", JSONDoc, nullable=False),
    Column("custom_attributes", JSONDoc, nullable=True),
    Column("callback_endpoint", Text, nullable=True),
    Column("users", BigInteger, nullable=False, server_default="0"),
    Column("error", Text, nullable=True),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("heartbeat_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True),
    UniqueConstraint("workspace_id", "running_segment"),
    Index(None, "segment_id", "started_at"),
)
