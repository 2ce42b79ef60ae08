"""Position safety: exits never exceed the filled entry

Revision ID: 0006_position_safety
Revises: 0005_relay_v2
Create Date: 2026-12-01
"""

from __future__ import annotations

revision = "0006_position_safety"
down_revision = "0005_relay_v2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Filled in by the issue that owns this revision."""


def downgrade() -> None:
    """Filled in by the issue that owns this revision."""
