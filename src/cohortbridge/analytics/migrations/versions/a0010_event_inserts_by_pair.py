"""event inserts looked up by (device, insert id) pair

The de-duplication read now looks each (device, insert id) pair up through the primary key;
the index by insert id alone (a0006) is no longer read, and writing it cost one random page
per event (raw engine: 27k -> 41k events/s in 2,000-event transactions).

Revision ID: a0010
Revises: a0009
Create Date: 2026-12-01 23:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "a0010"
down_revision: str | None = "a0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("event_inserts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_inserts_project_id_insert_id"))


def downgrade() -> None:
    with op.batch_alter_table("event_inserts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_event_inserts_project_id_insert_id"),
            ["project_id", "insert_id"],
            unique=False,
        )
