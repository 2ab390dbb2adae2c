"""event inserts by insert id

Revision ID: a0006
Revises: a0005
Create Date: 2026-12-01 09:32:15.835661
"""

from collections.abc import Sequence

from alembic import op

revision: str = "a0006"
down_revision: str | None = "a0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    with op.batch_alter_table("event_inserts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_event_inserts_project_id_insert_id"),
            ["project_id", "insert_id"],
            unique=False,
        )


def downgrade() -> None:

    with op.batch_alter_table("event_inserts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_inserts_project_id_insert_id"))
