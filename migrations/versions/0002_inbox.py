"""inbox (idempotent consumer)

Revision ID: 0002_inbox
Revises: 0001_outbox
Create Date: 2026-11-25
"""

from __future__ import annotations

revision = "0002_inbox"
down_revision = "0001_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
