"""segments, segment references and segment exports

Revision ID: e0003
Revises: e0002
Create Date: 2026-12-01 08:02:45.849366
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import cohortbridge.db.types

revision: str = "e0003"
down_revision: str | None = "e0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "segments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column(
            "definition",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("text_description", sa.Text(), nullable=True),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("analytics_tracking_enabled", sa.Boolean(), nullable=False),
        sa.Column("archived_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_segments_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
    )
    with op.batch_alter_table("segments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_segments_workspace_id_created_at"),
            ["workspace_id", "created_at"],
            unique=False,
        )

    op.create_table(
        "segment_exports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("segment_id", sa.String(length=36), nullable=False),
        sa.Column("object_prefix", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("running_segment", sa.String(length=36), nullable=True),
        sa.Column(
            "fields",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "custom_attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("callback_endpoint", sa.Text(), nullable=True),
        sa.Column("users", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_segment_exports_segment_id_segments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_segment_exports_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_exports")),
        sa.UniqueConstraint("object_prefix", name=op.f("uq_segment_exports_object_prefix")),
        sa.UniqueConstraint(
            "workspace_id",
            "running_segment",
            name=op.f("uq_segment_exports_workspace_id_running_segment"),
        ),
    )
    with op.batch_alter_table("segment_exports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_segment_exports_segment_id_started_at"),
            ["segment_id", "started_at"],
            unique=False,
        )

    op.create_table(
        "segment_references",
        sa.Column("segment_id", sa.String(length=36), nullable=False),
        sa.Column("referenced_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_segment_references_segment_id_segments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("segment_id", "referenced_id", name=op.f("pk_segment_references")),
    )
    with op.batch_alter_table("segment_references", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_segment_references_referenced_id"), ["referenced_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("segment_references", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segment_references_referenced_id"))

    op.drop_table("segment_references")
    with op.batch_alter_table("segment_exports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segment_exports_segment_id_started_at"))

    op.drop_table("segment_exports")
    with op.batch_alter_table("segments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segments_workspace_id_created_at"))

    op.drop_table("segments")
