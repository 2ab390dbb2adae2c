"""Tables of the Braze destination: destinations, cohort syncs, what engage holds, run history."""

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

destinations = Table(
    "destinations",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("project_id", BigId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("name", String(255), nullable=False),
    Column("rest_endpoint", Text, nullable=False),
    # Credentials for calling engage: kept as given (they are engage's secrets, sent on every
    # call), never shown again in listings.
    Column("data_import_key", Text, nullable=True),
    Column("partner_api_key", Text, nullable=True),
    Column("rest_api_key", Text, nullable=True),
    Column("app_id", String(64), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index(None, "project_id"),
)

cohort_syncs = Table(
    "cohort_syncs",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("project_id", BigId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("cohort", BigId, ForeignKey("cohorts.pk", ondelete="CASCADE"), nullable=False),
    Column(
        "destination",
        String(16),
        ForeignKey("destinations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # once | hourly | daily | realtime
    Column("cadence", String(16), nullable=False),
    # Primary, secondary, … identifiers: user_id, device_id, alias:<label>, property:<name>.
    Column("identifiers", JSONDoc, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("next_run_at", UTCDateTime(), nullable=True),
    # A run holds the sync until then; a worker that died lets it go when the lease ends.
    Column("leased_until", UTCDateTime(), nullable=True),
    # Who holds the lease: the queue's jobs of this sync ("queue:<lock>"); NULL for a run
    # of the in-process runner or the CLI.
    Column("leased_by", String(64), nullable=True),
    Column("named_as", Text, nullable=True),
    Column("last_success_at", UTCDateTime(), nullable=True),
    Column("last_failure_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Index(None, "next_run_at"),
)

# Who engage holds in the cohort through this sync, as acknowledged: each batch engage answered
# 201 is written here in its own transaction, so a run that stops converges on the next one.
sync_state = Table(
    "sync_state",
    metadata,
    Column("sync", String(16), ForeignKey("cohort_syncs.id", ondelete="CASCADE"), nullable=False),
    Column("amplitude_id", BigInteger, nullable=False),
    Column("kind", String(300), nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("sync", "amplitude_id"),
)

# The plan of the current run: what to send, in order (removals first). It is read, never
# updated, while the run sends (acknowledgements go to sync_state) and goes when the run ends; a
# run that stopped is planned again from scratch by the next one.
sync_pending = Table(
    "sync_pending",
    metadata,
    Column("sync", String(16), ForeignKey("cohort_syncs.id", ondelete="CASCADE"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("amplitude_id", BigInteger, nullable=False),
    Column("kind", String(300), nullable=False),
    Column("value", Text, nullable=False),
    Column("remove", Boolean, nullable=False),
    PrimaryKeyConstraint("sync", "seq"),
)

sync_runs = Table(
    "sync_runs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("sync", String(16), ForeignKey("cohort_syncs.id", ondelete="CASCADE"), nullable=False),
    Column("cohort_version", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("added", BigInteger, nullable=False),
    Column("removed", BigInteger, nullable=False),
    Column("skipped", BigInteger, nullable=False),
    Column("rejected", BigInteger, nullable=False),
    Column("error", Text, nullable=True),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True),
    Index(None, "sync", "started_at"),
)

sync_run_users = Table(
    "sync_run_users",
    metadata,
    Column("run", BigId, ForeignKey("sync_runs.id", ondelete="CASCADE"), nullable=False),
    Column("amplitude_id", BigInteger, nullable=False),
    Column("operation", String(8), nullable=False),
    Column("kind", String(300), nullable=True),
    Column("value", Text, nullable=True),
    Column("skip_reason", String(64), nullable=True),
    PrimaryKeyConstraint("run", "amplitude_id", "operation"),
)
