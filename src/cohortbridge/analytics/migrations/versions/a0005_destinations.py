"""destinations

Revision ID: a0005
Revises: a0004
Create Date: 2026-12-01 09:02:40.857173
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import cohortbridge.db.types

revision: str = "a0005"
down_revision: str | None = "a0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "destinations",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column(
            "project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("rest_endpoint", sa.Text(), nullable=False),
        sa.Column("data_import_key", sa.Text(), nullable=True),
        sa.Column("partner_api_key", sa.Text(), nullable=True),
        sa.Column("rest_api_key", sa.Text(), nullable=True),
        sa.Column("app_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_destinations_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_destinations")),
    )
    with op.batch_alter_table("destinations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_destinations_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "cohort_syncs",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column(
            "project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("cohort", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("destination", sa.String(length=16), nullable=False),
        sa.Column("cadence", sa.String(length=16), nullable=False),
        sa.Column(
            "identifiers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_run_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("leased_until", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("named_as", sa.Text(), nullable=True),
        sa.Column(
            "last_success_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "last_failure_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("created_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cohort"],
            ["cohorts.pk"],
            name=op.f("fk_cohort_syncs_cohort_cohorts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["destination"],
            ["destinations.id"],
            name=op.f("fk_cohort_syncs_destination_destinations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_cohort_syncs_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cohort_syncs")),
    )
    with op.batch_alter_table("cohort_syncs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cohort_syncs_next_run_at"), ["next_run_at"], unique=False
        )

    op.create_table(
        "sync_pending",
        sa.Column("sync", sa.String(length=16), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("amplitude_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=300), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("remove", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sync"],
            ["cohort_syncs.id"],
            name=op.f("fk_sync_pending_sync_cohort_syncs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sync", "seq", name=op.f("pk_sync_pending")),
    )
    op.create_table(
        "sync_runs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("sync", sa.String(length=16), nullable=False),
        sa.Column("cohort_version", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("added", sa.BigInteger(), nullable=False),
        sa.Column("removed", sa.BigInteger(), nullable=False),
        sa.Column("skipped", sa.BigInteger(), nullable=False),
        sa.Column("rejected", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["sync"],
            ["cohort_syncs.id"],
            name=op.f("fk_sync_runs_sync_cohort_syncs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_runs")),
    )
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sync_runs_sync_started_at"), ["sync", "started_at"], unique=False
        )

    op.create_table(
        "sync_state",
        sa.Column("sync", sa.String(length=16), nullable=False),
        sa.Column("amplitude_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=300), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sync"],
            ["cohort_syncs.id"],
            name=op.f("fk_sync_state_sync_cohort_syncs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sync", "amplitude_id", name=op.f("pk_sync_state")),
    )
    op.create_table(
        "sync_run_users",
        sa.Column("run", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("amplitude_id", sa.BigInteger(), nullable=False),
        sa.Column("operation", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=300), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("skip_reason", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["run"],
            ["sync_runs.id"],
            name=op.f("fk_sync_run_users_run_sync_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run", "amplitude_id", "operation", name=op.f("pk_sync_run_users")),
    )


def downgrade() -> None:

    op.drop_table("sync_run_users")
    op.drop_table("sync_state")
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_runs_sync_started_at"))

    op.drop_table("sync_runs")
    op.drop_table("sync_pending")
    with op.batch_alter_table("cohort_syncs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cohort_syncs_next_run_at"))

    op.drop_table("cohort_syncs")
    with op.batch_alter_table("destinations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_destinations_project_id"))

    op.drop_table("destinations")
