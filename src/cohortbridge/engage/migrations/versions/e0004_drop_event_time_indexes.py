"""drop the time indexes of custom_events and purchases

No query reads the occurrences by time (segments use the per-profile totals and day counts;
exports go by profile, Currents will go by id), and on /users/track the time index was most of
the pages written per request: events of random times land on random index pages.

Revision ID: e0004
Revises: e0003
Create Date: 2026-12-01 16:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "e0004"
down_revision: str | None = "e0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_custom_events_workspace_id_time", table_name="custom_events")
    op.drop_index("ix_purchases_workspace_id_time", table_name="purchases")


def downgrade() -> None:
    op.create_index("ix_purchases_workspace_id_time", "purchases", ["workspace_id", "time"])
    op.create_index("ix_custom_events_workspace_id_time", "custom_events", ["workspace_id", "time"])
