"""cohorts

Revision ID: a0003
Revises: a0002
Create Date: 2026-12-01 08:39:31.427203
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import cohortbridge.db.types

revision: str = "a0003"
down_revision: str | None = "a0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "cohorts",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column(
            "project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column(
            "definition",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("profile_api", sa.Boolean(), nullable=False),
        sa.Column("refresh_s", sa.Integer(), nullable=False),
        sa.Column(
            "next_compute_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("computed_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_cohorts_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_cohorts")),
        sa.UniqueConstraint("id", name=op.f("uq_cohorts_id")),
    )
    with op.batch_alter_table("cohorts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cohorts_next_compute_at"), ["next_compute_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_cohorts_project_id_created_at"),
            ["project_id", "created_at"],
            unique=False,
        )

    op.create_table(
        "cohort_changes",
        sa.Column("cohort", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("amplitude_id", sa.BigInteger(), nullable=False),
        sa.Column("change", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cohort"],
            ["cohorts.pk"],
            name=op.f("fk_cohort_changes_cohort_cohorts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "cohort", "version", "amplitude_id", name=op.f("pk_cohort_changes")
        ),
    )
    op.create_table(
        "cohort_computations",
        sa.Column("cohort", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("computed_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("entered", sa.BigInteger(), nullable=False),
        sa.Column("left", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cohort"],
            ["cohorts.pk"],
            name=op.f("fk_cohort_computations_cohort_cohorts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("cohort", "version", name=op.f("pk_cohort_computations")),
    )
    op.create_table(
        "cohort_downloads",
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("cohort", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "props",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("requested_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["cohort"],
            ["cohorts.pk"],
            name=op.f("fk_cohort_downloads_cohort_cohorts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_cohort_downloads")),
        sa.UniqueConstraint(
            "request_id", "cohort", name=op.f("uq_cohort_downloads_request_id_cohort")
        ),
    )
    op.create_table(
        "cohort_members",
        sa.Column("cohort", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("amplitude_id", sa.BigInteger(), nullable=False),
        sa.Column("since_version", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cohort"],
            ["cohorts.pk"],
            name=op.f("fk_cohort_members_cohort_cohorts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("cohort", "amplitude_id", name=op.f("pk_cohort_members")),
    )
    with op.batch_alter_table("cohort_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cohort_members_amplitude_id"), ["amplitude_id"], unique=False
        )

    op.create_table(
        "cohort_references",
        sa.Column("cohort", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "referenced", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["cohort"],
            ["cohorts.pk"],
            name=op.f("fk_cohort_references_cohort_cohorts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("cohort", "referenced", name=op.f("pk_cohort_references")),
    )


def downgrade() -> None:

    op.drop_table("cohort_references")
    with op.batch_alter_table("cohort_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cohort_members_amplitude_id"))

    op.drop_table("cohort_members")
    op.drop_table("cohort_downloads")
    op.drop_table("cohort_computations")
    op.drop_table("cohort_changes")
    with op.batch_alter_table("cohorts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cohorts_project_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_cohorts_next_compute_at"))

    op.drop_table("cohorts")
