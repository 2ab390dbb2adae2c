"""Tables of event streaming (spec amplitude §4.2): streams, their outbox and delivery counts."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from cohortbridge.analytics.metadata import metadata
from cohortbridge.db.types import BigId, JSONDoc, UTCDateTime

event_streams = Table(
    "event_streams",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("project_id", BigId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column(
        "destination",
        String(16),
        ForeignKey("destinations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(255), nullable=False),
    # {"events": {"types": [...] | null, "filters": [...]}, "event_properties": [...],
    #  "user_properties": [...], "identifier": {...}, "update_existing_only": bool,
    #  "send_events": bool, "send_users": bool, "user_attributes": [...]} — see logic.py.
    Column("config", JSONDoc, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index(None, "project_id"),
)

# Written in the transaction that accepts the event, so an accepted event is never lost; a row
# leaves when engage acknowledged it, or turns dead (next_attempt_at NULL) when engage rejected
# it or ten attempts over four hours failed.
stream_outbox = Table(
    "stream_outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "stream", String(16), ForeignKey("event_streams.id", ondelete="CASCADE"), nullable=False
    ),
    # events | attributes: which array of /users/track the object goes in.
    Column("kind", String(16), nullable=False),
    Column("payload", JSONDoc, nullable=False),
    Column("enqueued_at", UTCDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("leased_until", UTCDateTime(), nullable=True),
    Column("error", Text, nullable=True),
    Index(None, "stream", "next_attempt_at", "id"),
)

# Delivery counts per stream and minute, for history and charts.
stream_stats = Table(
    "stream_stats",
    metadata,
    Column(
        "stream", String(16), ForeignKey("event_streams.id", ondelete="CASCADE"), nullable=False
    ),
    Column("minute", UTCDateTime(), nullable=False),
    Column("requests", BigInteger, nullable=False),
    Column("forwarded", BigInteger, nullable=False),
    Column("rejected", BigInteger, nullable=False),
    Column("retried", BigInteger, nullable=False),
    Column("dead", BigInteger, nullable=False),
    Column("latency_ms_sum", BigInteger, nullable=False),
    Column("latency_ms_max", BigInteger, nullable=False),
    PrimaryKeyConstraint("stream", "minute"),
)
