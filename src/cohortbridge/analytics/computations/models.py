"""Tables of computations (computed user properties, spec amplitude §4.3) and their values."""

from sqlalchemy import Column, ForeignKey, Index, Integer, PrimaryKeyConstraint, String, Table

from cohortbridge.analytics.metadata import metadata
from cohortbridge.db.types import BigId, JSONDoc, UTCDateTime

computations = Table(
    "computations",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("id", String(16), nullable=False, unique=True),
    Column("project_id", BigId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    # The user property the values appear as.
    Column("name", String(255), nullable=False),
    # {"kind": "count" | "aggregation" | "first" | "last", "event_type", "prop"?,
    #  "aggregate"?, "filters", window fields} — validated by logic.py.
    Column("spec", JSONDoc, nullable=False),
    Column("refresh_s", Integer, nullable=False),
    Column("next_compute_at", UTCDateTime(), nullable=True),
    Column("computed_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Index(None, "project_id"),
)

computation_values = Table(
    "computation_values",
    metadata,
    Column("computation", BigId, ForeignKey("computations.pk", ondelete="CASCADE"), nullable=False),
    Column("amplitude_id", BigId, nullable=False),
    Column("value", JSONDoc, nullable=True),
    PrimaryKeyConstraint("computation", "amplitude_id"),
    Index(None, "amplitude_id"),
)
