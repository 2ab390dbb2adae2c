"""Tables of users (by Amplitude ID), their devices and merges (spec amplitude §6.1–§6.2)."""

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from cohortbridge.analytics.metadata import metadata
from cohortbridge.db.types import BigId, JSONDoc, UTCDateTime

users = Table(
    "users",
    metadata,
    Column("amplitude_id", BigId, primary_key=True, autoincrement=True),
    Column("project_id", BigId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    # NULL for an anonymous user; set once, never changed (a new user id is a new user).
    Column("user_id", String(1024), nullable=True),
    Column("user_properties", JSONDoc, nullable=False),
    # The device and location fields of the latest event or identify (platform, country, …).
    Column("device_properties", JSONDoc, nullable=False),
    # Events only: identify calls never make a user new or active.
    Column("first_seen_at", UTCDateTime(), nullable=True),
    Column("last_seen_at", UTCDateTime(), nullable=True),
    Column("last_active_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("project_id", "user_id"),
    Index(None, "project_id", "last_active_at"),
    # A cohort's delta computation reads the users changed since its last one.
    Index(None, "project_id", "updated_at"),
)

# Which user a device belongs to now: the last known user on it (rule 4 of §6.1).
devices = Table(
    "devices",
    metadata,
    Column("project_id", BigId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("device_id", String(1024), nullable=False),
    Column("amplitude_id", BigInteger, nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("project_id", "device_id"),
    Index(None, "amplitude_id"),
)

# An anonymous Amplitude ID merged into an identified one (rule 5): lookups by the old id
# still find the user.
merges = Table(
    "merges",
    metadata,
    Column("project_id", BigId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("merged_id", BigInteger, nullable=False),
    Column("into_id", BigInteger, nullable=False),
    Column("merged_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("project_id", "merged_id"),
    Index(None, "into_id"),
    Index(None, "project_id", "merged_at"),
)
