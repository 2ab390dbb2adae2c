"""Tables of cohorts, their members and every computation's entries and exits (spec §3)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from cohortbridge.analytics.metadata import metadata
from cohortbridge.db.types import BigId, JSONDoc, UTCDateTime

cohorts = Table(
    "cohorts",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    # Amplitude-shaped public id ("1a2bc3d").
    Column("id", String(16), nullable=False, unique=True),
    Column("project_id", BigId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=True),
    # "behavioral" (a definition, recomputed) or "static" (uploaded ids).
    Column("kind", String(16), nullable=False),
    Column("definition", JSONDoc, nullable=True),
    Column("owner", String(255), nullable=True),
    Column("published", Boolean, nullable=False),
    Column("archived", Boolean, nullable=False),
    # Listed by the User Profile API's get_cohort_ids.
    Column("profile_api", Boolean, nullable=False),
    # Seconds between computations (3600 by default; 60 for cohorts with a real-time sync).
    Column("refresh_s", Integer, nullable=False),
    Column("next_compute_at", UTCDateTime(), nullable=True),
    # The latest computation: its number, time and size.
    Column("version", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("computed_at", UTCDateTime(), nullable=True),
    # The next computation may re-evaluate only the users that changed since this moment (the
    # last computation's); NULL after a new definition: the next one computes everyone.
    Column("delta_since", UTCDateTime(), nullable=True),
    # The last computation of everyone (at least daily, whatever the deltas).
    Column("full_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index(None, "project_id", "created_at"),
    Index(None, "next_compute_at"),
)

cohort_members = Table(
    "cohort_members",
    metadata,
    Column("cohort", BigId, ForeignKey("cohorts.pk", ondelete="CASCADE"), nullable=False),
    Column("amplitude_id", BigInteger, nullable=False),
    Column("since_version", BigInteger, nullable=False),
    PrimaryKeyConstraint("cohort", "amplitude_id"),
    Index(None, "amplitude_id"),
)

# Who entered (+1) and who left (-1) at each computation: what cohort syncs consume.
cohort_changes = Table(
    "cohort_changes",
    metadata,
    Column("cohort", BigId, ForeignKey("cohorts.pk", ondelete="CASCADE"), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("amplitude_id", BigInteger, nullable=False),
    Column("change", SmallInteger, nullable=False),
    PrimaryKeyConstraint("cohort", "version", "amplitude_id"),
)

cohort_computations = Table(
    "cohort_computations",
    metadata,
    Column("cohort", BigId, ForeignKey("cohorts.pk", ondelete="CASCADE"), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("computed_at", UTCDateTime(), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("entered", BigInteger, nullable=False),
    Column("left", BigInteger, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    PrimaryKeyConstraint("cohort", "version"),
)

# Which cohorts a cohort's "part of cohort" conditions name (no cycles).
cohort_references = Table(
    "cohort_references",
    metadata,
    Column("cohort", BigId, ForeignKey("cohorts.pk", ondelete="CASCADE"), nullable=False),
    Column("referenced", BigId, nullable=False),
    PrimaryKeyConstraint("cohort", "referenced"),
)

# Downloads requested through /api/5/cohorts/request/{id}: a CSV written in the background.
cohort_downloads = Table(
    "cohort_downloads",
    metadata,
    Column("request_id", String(36), primary_key=True),
    Column("cohort", BigId, ForeignKey("cohorts.pk", ondelete="CASCADE"), nullable=False),
    Column("props", JSONDoc, nullable=False),
    Column("status", String(16), nullable=False),
    Column("rows", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
    Column("requested_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True),
    UniqueConstraint("request_id", "cohort"),
)
