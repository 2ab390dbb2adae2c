"""partners, data import keys and cohorts

Revision ID: e0002
Revises: e0001
Create Date: 2026-11-22 13:15:58.949110
"""

import datetime
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cohortbridge.db.types

revision: str = "e0002"
down_revision: str | None = "e0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "partners",
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=128), nullable=False),
        sa.Column("created_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("slug", name=op.f("pk_partners")),
    )
    op.create_table(
        "cohorts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("cohort_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column(
            "partner_created_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("version", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner"],
            ["partners.slug"],
            name=op.f("fk_cohorts_partner_partners"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_cohorts_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cohorts")),
        sa.UniqueConstraint(
            "workspace_id",
            "partner",
            "cohort_id",
            name=op.f("uq_cohorts_workspace_id_partner_cohort_id"),
        ),
    )
    op.create_table(
        "data_import_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("key_digest", sa.String(length=64), nullable=False),
        sa.Column("key_hint", sa.String(length=8), nullable=False),
        sa.Column("created_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "invalidated_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["partner"],
            ["partners.slug"],
            name=op.f("fk_data_import_keys_partner_partners"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_data_import_keys_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_import_keys")),
        sa.UniqueConstraint("key_digest", name=op.f("uq_data_import_keys_key_digest")),
    )
    with op.batch_alter_table("data_import_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_data_import_keys_workspace_id_partner"),
            ["workspace_id", "partner"],
            unique=False,
        )

    op.create_table(
        "partner_api_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("key_digest", sa.String(length=64), nullable=False),
        sa.Column("key_hint", sa.String(length=8), nullable=False),
        sa.Column("created_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["partner"],
            ["partners.slug"],
            name=op.f("fk_partner_api_keys_partner_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_api_keys")),
        sa.UniqueConstraint("key_digest", name=op.f("uq_partner_api_keys_key_digest")),
    )
    with op.batch_alter_table("partner_api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_partner_api_keys_partner"), ["partner"], unique=False)

    op.create_table(
        "cohort_members",
        sa.Column("cohort", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "profile_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("added_at", cohortbridge.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("added_in", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cohort"],
            ["cohorts.id"],
            name=op.f("fk_cohort_members_cohort_cohorts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiles.id"],
            name=op.f("fk_cohort_members_profile_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("cohort", "profile_id", name=op.f("pk_cohort_members")),
    )
    with op.batch_alter_table("cohort_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cohort_members_profile_id"), ["profile_id"], unique=False
        )

    # Amplitude is built in; other partners are added with `engage partners create`.
    partners = sa.table(
        "partners",
        sa.column("slug", sa.String),
        sa.column("display_name", sa.String),
        sa.column("created_at", cohortbridge.db.types.UTCDateTime()),
    )
    op.bulk_insert(
        partners,
        [
            {
                "slug": "amplitude",
                "display_name": "Amplitude",
                "created_at": datetime.datetime.now(datetime.UTC),
            }
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("cohort_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cohort_members_profile_id"))

    op.drop_table("cohort_members")
    with op.batch_alter_table("partner_api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_api_keys_partner"))

    op.drop_table("partner_api_keys")
    with op.batch_alter_table("data_import_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_import_keys_workspace_id_partner"))

    op.drop_table("data_import_keys")
    op.drop_table("cohorts")
    op.drop_table("partners")
