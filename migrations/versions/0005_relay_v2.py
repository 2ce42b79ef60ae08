"""Relay v2 outbox columns and indexes

Revision ID: 0005_relay_v2
Revises: 0004_exit
Create Date: 2026-12-01
"""

from __future__ import annotations

revision = "0005_relay_v2"
down_revision = "0004_exit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Filled in by the issue that owns this revision."""


def downgrade() -> None:
    """Filled in by the issue that owns this revision."""
