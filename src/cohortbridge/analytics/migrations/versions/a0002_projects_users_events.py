"""projects, users, devices, merges and events

Revision ID: a0002
Revises: a0001
Create Date: 2026-12-01 08:24:38.187967
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import cohortbridge.db.types

revision: str = "a0002"
down_revision: str | None = "a0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "event_inserts",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("device_id", sa.String(length=1024), nullable=False),
        sa.Column("insert_id", sa.String(length=1024), nullable=False),
        sa.Column("seen_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "project_id", "device_id", "insert_id", name=op.f("pk_event_inserts")
        ),
    )
    with op.batch_alter_table("event_inserts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_inserts_seen_at"), ["seen_at"], unique=False)

    op.create_table(
        "events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("amplitude_id", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.String(length=1024), nullable=False),
        sa.Column("time", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(length=1024), nullable=True),
        sa.Column("device_id", sa.String(length=1024), nullable=True),
        sa.Column("session_id", sa.BigInteger(), nullable=True),
        sa.Column("insert_id", sa.String(length=1024), nullable=True),
        sa.Column(
            "event_properties",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "user_properties",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "server_received_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_events_amplitude_id_time"), ["amplitude_id", "time"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_events_project_id_event_type_time"),
            ["project_id", "event_type", "time"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_events_project_id_time"), ["project_id", "time"], unique=False
        )

    op.create_table(
        "projects",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("api_key", sa.String(length=64), nullable=False),
        sa.Column("secret_digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("api_key", name=op.f("uq_projects_api_key")),
        sa.UniqueConstraint("name", name=op.f("uq_projects_name")),
        sa.UniqueConstraint("secret_digest", name=op.f("uq_projects_secret_digest")),
    )
    op.create_table(
        "devices",
        sa.Column(
            "project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("device_id", sa.String(length=1024), nullable=False),
        sa.Column("amplitude_id", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_devices_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "device_id", name=op.f("pk_devices")),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_devices_amplitude_id"), ["amplitude_id"], unique=False)

    op.create_table(
        "event_types",
        sa.Column(
            "project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("event_type", sa.String(length=1024), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_event_types_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "event_type", name=op.f("pk_event_types")),
    )
    op.create_table(
        "merges",
        sa.Column(
            "project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("merged_id", sa.BigInteger(), nullable=False),
        sa.Column("into_id", sa.BigInteger(), nullable=False),
        sa.Column("merged_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_merges_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "merged_id", name=op.f("pk_merges")),
    )
    with op.batch_alter_table("merges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_merges_into_id"), ["into_id"], unique=False)

    op.create_table(
        "users",
        sa.Column(
            "amplitude_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("user_id", sa.String(length=1024), nullable=True),
        sa.Column(
            "user_properties",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "device_properties",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("first_seen_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "last_active_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("created_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_users_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("amplitude_id", name=op.f("pk_users")),
        sa.UniqueConstraint("project_id", "user_id", name=op.f("uq_users_project_id_user_id")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_users_project_id_last_active_at"),
            ["project_id", "last_active_at"],
            unique=False,
        )


def downgrade() -> None:

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_project_id_last_active_at"))

    op.drop_table("users")
    with op.batch_alter_table("merges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_merges_into_id"))

    op.drop_table("merges")
    op.drop_table("event_types")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_devices_amplitude_id"))

    op.drop_table("devices")
    op.drop_table("projects")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_project_id_time"))
        batch_op.drop_index(batch_op.f("ix_events_project_id_event_type_time"))
        batch_op.drop_index(batch_op.f("ix_events_amplitude_id_time"))

    op.drop_table("events")
    with op.batch_alter_table("event_inserts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_inserts_seen_at"))

    op.drop_table("event_inserts")
