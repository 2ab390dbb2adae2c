"""Tables of ingested events, shaped for cohort computation (by project, type, time, user)."""

from sqlalchemy import BigInteger, Column, Index, PrimaryKeyConstraint, String, Table

from cohortbridge.analytics.metadata import metadata
from cohortbridge.db.types import BigId, JSONDoc, UTCDateTime

events = Table(
    "events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("project_id", BigInteger, nullable=False),
    Column("amplitude_id", BigInteger, nullable=False),
    Column("event_type", String(1024), nullable=False),
    Column("time", UTCDateTime(), nullable=False),
    Column("user_id", String(1024), nullable=True),
    Column("device_id", String(1024), nullable=True),
    Column("session_id", BigInteger, nullable=True),
    Column("insert_id", String(1024), nullable=True),
    Column("event_properties", JSONDoc, nullable=False),
    # The user's properties at the moment of the event (spec amplitude §6.2).
    Column("user_properties", JSONDoc, nullable=False),
    # Every other field the client sent (platform, revenue, location, library, …).
    Column("data", JSONDoc, nullable=False),
    Column("server_received_at", UTCDateTime(), nullable=False),
    Index(None, "project_id", "event_type", "time"),
    Index(None, "amplitude_id", "time"),
    Index(None, "project_id", "time"),
)

# insert_id de-duplication: a later event with the same insert_id on the same device (or with
# no device) within 7 days is ignored. Pruned by age.
event_inserts = Table(
    "event_inserts",
    metadata,
    Column("project_id", BigInteger, nullable=False),
    Column("device_id", String(1024), nullable=False),
    Column("insert_id", String(1024), nullable=False),
    Column("seen_at", UTCDateTime(), nullable=False),
    # The de-duplication read looks pairs up through this key (repository ``seen_inserts``).
    PrimaryKeyConstraint("project_id", "device_id", "insert_id"),
    Index(None, "seen_at"),
)
