"""computations

Revision ID: a0004
Revises: a0003
Create Date: 2026-12-01 08:51:54.828743
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import cohortbridge.db.types

revision: str = "a0004"
down_revision: str | None = "a0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "computations",
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
        sa.Column(
            "spec",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("refresh_s", sa.Integer(), nullable=False),
        sa.Column(
            "next_compute_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("computed_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_computations_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_computations")),
        sa.UniqueConstraint("id", name=op.f("uq_computations_id")),
    )
    with op.batch_alter_table("computations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_computations_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "computation_values",
        sa.Column(
            "computation", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "amplitude_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "value",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["computation"],
            ["computations.pk"],
            name=op.f("fk_computation_values_computation_computations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("computation", "amplitude_id", name=op.f("pk_computation_values")),
    )
    with op.batch_alter_table("computation_values", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_computation_values_amplitude_id"), ["amplitude_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("computation_values", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_computation_values_amplitude_id"))

    op.drop_table("computation_values")
    with op.batch_alter_table("computations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_computations_project_id"))

    op.drop_table("computations")
