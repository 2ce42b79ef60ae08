"""EXIT tables

Revision ID: 0004_exit
Revises: 0003_entry
Create Date: 2026-11-25
"""

from __future__ import annotations

revision = "0004_exit"
down_revision = "0003_entry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
