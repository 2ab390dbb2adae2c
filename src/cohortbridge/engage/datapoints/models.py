"""The ledger table."""

from sqlalchemy import BigInteger, Column, Date, PrimaryKeyConstraint, String, Table

from cohortbridge.engage.metadata import metadata

datapoints = Table(
    "datapoints",
    metadata,
    Column("workspace_id", String(36), nullable=False),
    Column("day", Date, nullable=False),
    # users_track, cohort_import:<partner>, …
    Column("source", String(128), nullable=False),
    Column("count", BigInteger, nullable=False),
    PrimaryKeyConstraint("workspace_id", "day", "source"),
)
