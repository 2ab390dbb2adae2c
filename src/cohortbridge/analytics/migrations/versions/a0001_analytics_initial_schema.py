"""analytics initial schema

Revision ID: a0001
Revises:
Create Date: 2026-11-22 12:20:45.564126
"""

from collections.abc import Sequence

revision: str = "a0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
