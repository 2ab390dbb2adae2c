"""Tables of user profiles (spec braze §4).

A profile has an internal integer key (``id``) used by every other table: memberships and
histories join on it cheaply. ``braze_id`` is the public, Braze-shaped id.
"""

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from cohortbridge.db.types import BigId, JSONDoc, UTCDateTime
from cohortbridge.engage.metadata import metadata

profiles = Table(
    "profiles",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "workspace_id", String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    ),
    Column("braze_id", String(24), nullable=False, unique=True),
    # ≤ 987 bytes (spec braze §4); Text because a byte limit is checked in logic, not by the column.
    Column("external_id", Text, nullable=True),
    Column("email", String(255), nullable=True),
    Column("phone", String(64), nullable=True),
    Column("first_name", String(255), nullable=True),
    Column("last_name", String(255), nullable=True),
    Column("gender", String(1), nullable=True),
    Column("dob", String(10), nullable=True),
    Column("country", String(2), nullable=True),
    Column("home_city", String(255), nullable=True),
    Column("language", String(16), nullable=True),
    Column("time_zone", String(64), nullable=True),
    Column("email_subscribe", String(16), nullable=True),
    Column("push_subscribe", String(16), nullable=True),
    # The remaining standard fields (current_location, facebook, twitter, …) as one document.
    Column("standard", JSONDoc, nullable=False),
    Column("custom_attributes", JSONDoc, nullable=False),
    Column("random_bucket", Integer, nullable=False),
    Column("total_revenue", Float, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("workspace_id", "external_id"),
    Index(None, "workspace_id", "email"),
    Index(None, "workspace_id", "phone"),
)

profile_aliases = Table(
    "profile_aliases",
    metadata,
    Column("workspace_id", String(36), nullable=False),
    Column("alias_label", String(255), nullable=False),
    Column("alias_name", String(255), nullable=False),
    Column("profile_id", BigId, ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False),
    PrimaryKeyConstraint("workspace_id", "alias_label", "alias_name"),
    # One name per label per profile.
    UniqueConstraint("profile_id", "alias_label"),
)

profile_devices = Table(
    "profile_devices",
    metadata,
    Column("workspace_id", String(36), nullable=False),
    Column("device_id", String(255), nullable=False),
    Column("profile_id", BigId, ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False),
    Column("app_id", String(36), nullable=True),
    Column("push_token", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("workspace_id", "device_id"),
    Index(None, "profile_id"),
)

# Per-profile custom event history, shaped for segments: all-time count and first/last time,
# plus per-UTC-day counts for "X times in the last Y days" (Braze keeps Y ≤ 30).
profile_event_stats = Table(
    "profile_event_stats",
    metadata,
    Column("profile_id", BigId, ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("first_at", UTCDateTime(), nullable=False),
    Column("last_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("profile_id", "name"),
    Index(None, "name"),
)

profile_event_days = Table(
    "profile_event_days",
    metadata,
    Column("profile_id", BigId, ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("day", Date, nullable=False),
    Column("count", BigInteger, nullable=False),
    PrimaryKeyConstraint("profile_id", "name", "day"),
)

profile_purchase_stats = Table(
    "profile_purchase_stats",
    metadata,
    Column("profile_id", BigId, ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False),
    Column("product_id", String(255), nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("revenue", Float, nullable=False),
    Column("first_at", UTCDateTime(), nullable=False),
    Column("last_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("profile_id", "product_id"),
)

profile_purchase_days = Table(
    "profile_purchase_days",
    metadata,
    Column("profile_id", BigId, ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False),
    Column("product_id", String(255), nullable=False),
    Column("day", Date, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("revenue", Float, nullable=False),
    PrimaryKeyConstraint("profile_id", "product_id", "day"),
)

# The occurrences themselves, for exports, Currents and property-based rules. Not keyed to the
# profile by a foreign key: Braze keeps event counts when a user is deleted. Read by profile or
# in insertion (id) order only: an index on their time was the costliest write of
# /users/track (random times dirtied ~110 of its ~135 pages per request; e0004 dropped it).
custom_events = Table(
    "custom_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workspace_id", String(36), nullable=False),
    Column("profile_id", BigId, nullable=False),
    Column("name", String(255), nullable=False),
    Column("time", UTCDateTime(), nullable=False),
    Column("app_id", String(64), nullable=True),
    Column("properties", JSONDoc, nullable=True),
    Index(None, "profile_id"),
)

purchases = Table(
    "purchases",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workspace_id", String(36), nullable=False),
    Column("profile_id", BigId, nullable=False),
    Column("product_id", String(255), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("price", Float, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("time", UTCDateTime(), nullable=False),
    Column("app_id", String(64), nullable=True),
    Column("properties", JSONDoc, nullable=True),
    Index(None, "profile_id"),
)
