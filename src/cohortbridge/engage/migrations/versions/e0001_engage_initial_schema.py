"""engage initial schema

Revision ID: e0001
Revises:
Create Date: 2026-11-22 12:20:39.260765
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import cohortbridge.db.types

revision: str = "e0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "custom_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column(
            "profile_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("time", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=True),
        sa.Column(
            "properties",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_events")),
    )
    with op.batch_alter_table("custom_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_custom_events_profile_id"), ["profile_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_custom_events_workspace_id_time"), ["workspace_id", "time"], unique=False
        )

    op.create_table(
        "datapoints",
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "day", "source", name=op.f("pk_datapoints")),
    )
    op.create_table(
        "purchases",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column(
            "profile_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("product_id", sa.String(length=255), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("time", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=True),
        sa.Column(
            "properties",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchases")),
    )
    with op.batch_alter_table("purchases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_purchases_profile_id"), ["profile_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_purchases_workspace_id_time"), ["workspace_id", "time"], unique=False
        )

    op.create_table(
        "workspaces",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspaces")),
        sa.UniqueConstraint("name", name=op.f("uq_workspaces_name")),
    )
    op.create_table(
        "apps",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("created_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_apps_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apps")),
    )
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_apps_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "profiles",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("braze_id", sa.String(length=24), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column("first_name", sa.String(length=255), nullable=True),
        sa.Column("last_name", sa.String(length=255), nullable=True),
        sa.Column("gender", sa.String(length=1), nullable=True),
        sa.Column("dob", sa.String(length=10), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("home_city", sa.String(length=255), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("email_subscribe", sa.String(length=16), nullable=True),
        sa.Column("push_subscribe", sa.String(length=16), nullable=True),
        sa.Column(
            "standard",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "custom_attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("random_bucket", sa.Integer(), nullable=False),
        sa.Column("total_revenue", sa.Float(), server_default="0", nullable=False),
        sa.Column("created_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_profiles_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profiles")),
        sa.UniqueConstraint("braze_id", name=op.f("uq_profiles_braze_id")),
        sa.UniqueConstraint(
            "workspace_id", "external_id", name=op.f("uq_profiles_workspace_id_external_id")
        ),
    )
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_profiles_workspace_id_email"), ["workspace_id", "email"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_profiles_workspace_id_phone"), ["workspace_id", "phone"], unique=False
        )

    op.create_table(
        "rest_api_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("key_digest", sa.String(length=64), nullable=False),
        sa.Column("key_hint", sa.String(length=8), nullable=False),
        sa.Column(
            "permissions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_rest_api_keys_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rest_api_keys")),
        sa.UniqueConstraint("key_digest", name=op.f("uq_rest_api_keys_key_digest")),
    )
    with op.batch_alter_table("rest_api_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rest_api_keys_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "profile_aliases",
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("alias_label", sa.String(length=255), nullable=False),
        sa.Column("alias_name", sa.String(length=255), nullable=False),
        sa.Column(
            "profile_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiles.id"],
            name=op.f("fk_profile_aliases_profile_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id", "alias_label", "alias_name", name=op.f("pk_profile_aliases")
        ),
        sa.UniqueConstraint(
            "profile_id", "alias_label", name=op.f("uq_profile_aliases_profile_id_alias_label")
        ),
    )
    op.create_table(
        "profile_devices",
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=False),
        sa.Column(
            "profile_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("app_id", sa.String(length=36), nullable=True),
        sa.Column("push_token", sa.Text(), nullable=True),
        sa.Column("created_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiles.id"],
            name=op.f("fk_profile_devices_profile_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "device_id", name=op.f("pk_profile_devices")),
    )
    with op.batch_alter_table("profile_devices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_profile_devices_profile_id"), ["profile_id"], unique=False
        )

    op.create_table(
        "profile_event_days",
        sa.Column(
            "profile_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiles.id"],
            name=op.f("fk_profile_event_days_profile_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("profile_id", "name", "day", name=op.f("pk_profile_event_days")),
    )
    op.create_table(
        "profile_event_stats",
        sa.Column(
            "profile_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiles.id"],
            name=op.f("fk_profile_event_stats_profile_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("profile_id", "name", name=op.f("pk_profile_event_stats")),
    )
    with op.batch_alter_table("profile_event_stats", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_profile_event_stats_name"), ["name"], unique=False)

    op.create_table(
        "profile_purchase_days",
        sa.Column(
            "profile_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("product_id", sa.String(length=255), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("revenue", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiles.id"],
            name=op.f("fk_profile_purchase_days_profile_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "profile_id", "product_id", "day", name=op.f("pk_profile_purchase_days")
        ),
    )
    op.create_table(
        "profile_purchase_stats",
        sa.Column(
            "profile_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("product_id", sa.String(length=255), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("revenue", sa.Float(), nullable=False),
        sa.Column("first_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiles.id"],
            name=op.f("fk_profile_purchase_stats_profile_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("profile_id", "product_id", name=op.f("pk_profile_purchase_stats")),
    )


def downgrade() -> None:
    op.drop_table("profile_purchase_stats")
    op.drop_table("profile_purchase_days")
    with op.batch_alter_table("profile_event_stats", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profile_event_stats_name"))

    op.drop_table("profile_event_stats")
    op.drop_table("profile_event_days")
    with op.batch_alter_table("profile_devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profile_devices_profile_id"))

    op.drop_table("profile_devices")
    op.drop_table("profile_aliases")
    with op.batch_alter_table("rest_api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rest_api_keys_workspace_id"))

    op.drop_table("rest_api_keys")
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profiles_workspace_id_phone"))
        batch_op.drop_index(batch_op.f("ix_profiles_workspace_id_email"))

    op.drop_table("profiles")
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_apps_workspace_id"))

    op.drop_table("apps")
    op.drop_table("workspaces")
    with op.batch_alter_table("purchases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_purchases_workspace_id_time"))
        batch_op.drop_index(batch_op.f("ix_purchases_profile_id"))

    op.drop_table("purchases")
    op.drop_table("datapoints")
    with op.batch_alter_table("custom_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_custom_events_workspace_id_time"))
        batch_op.drop_index(batch_op.f("ix_custom_events_profile_id"))

    op.drop_table("custom_events")
