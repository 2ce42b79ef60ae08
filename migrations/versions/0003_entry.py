"""reference data and ENTRY tables

Revision ID: 0003_entry
Revises: 0002_inbox
Create Date: 2026-11-25
"""

from __future__ import annotations

revision = "0003_entry"
down_revision = "0002_inbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
