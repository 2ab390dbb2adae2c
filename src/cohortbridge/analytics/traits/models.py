"""Tables of user property and computation syncs to Braze (spec amplitude §4.3)."""

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
)

from cohortbridge.analytics.metadata import metadata
from cohortbridge.db.types import BigId, JSONDoc, UTCDateTime

trait_syncs = Table(
    "trait_syncs",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("project_id", BigId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column(
        "destination",
        String(16),
        ForeignKey("destinations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # property | computation
    Column("source", String(16), nullable=False),
    # The user property's name, or the computation's public id.
    Column("source_name", String(255), nullable=False),
    # The Braze custom attribute written: the property's or computation's name.
    Column("attribute", String(255), nullable=False),
    # {"property": "user_id" | <user property>, "type": "external_id" | "user_alias" | …,
    #  "alias_label": …} — streams/logic.py's identifier mapping.
    Column("identifier", JSONDoc, nullable=False),
    # once | hourly | daily (never real-time)
    Column("cadence", String(16), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("next_run_at", UTCDateTime(), nullable=True),
    Column("leased_until", UTCDateTime(), nullable=True),
    # Who holds the lease: the queue's jobs of this sync ("queue:<lock>"); NULL for a run
    # of the in-process runner or the CLI.
    Column("leased_by", String(64), nullable=True),
    Column("last_success_at", UTCDateTime(), nullable=True),
    Column("last_failure_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Index(None, "next_run_at"),
)

# What engage acknowledged, per user: the identifier used and the value written. A run sends
# only users whose value (or identifier) differs from this.
trait_state = Table(
    "trait_state",
    metadata,
    Column("sync", String(16), ForeignKey("trait_syncs.id", ondelete="CASCADE"), nullable=False),
    Column("amplitude_id", BigInteger, nullable=False),
    Column("identifier", Text, nullable=False),
    Column("value", JSONDoc, nullable=True),
    PrimaryKeyConstraint("sync", "amplitude_id"),
)

trait_runs = Table(
    "trait_runs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("sync", String(16), ForeignKey("trait_syncs.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("candidates", BigInteger, nullable=False),
    Column("sent", BigInteger, nullable=False),
    Column("unchanged", BigInteger, nullable=False),
    Column("skipped", BigInteger, nullable=False),
    Column("rejected", BigInteger, nullable=False),
    Column("error", Text, nullable=True),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True),
    Index(None, "sync", "started_at"),
)
