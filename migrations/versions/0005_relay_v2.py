"""Relay v2: writers' key locks replace the commit-order watermark

Revision ID: 0005_relay_v2
Revises: 0004_exit
Create Date: 2026-12-01

- ``outbox_lock_keys(text[])`` (PostgreSQL): the transaction-level advisory lock
  per partition key that ``emit`` takes before its INSERT, for plain-SQL writers
  to take too (docs/outbox.md). Keys are locked in hash order: no deadlock
  between two writers of overlapping key sets.
- ``xact_id`` and its index go: the relay no longer needs a watermark.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_relay_v2"
down_revision = "0004_exit"
branch_labels = None
depends_on = None

KEY_LOCK_SEED = 0x6F7574626F78  # hashtextextended seed: "outbox"

LOCK_KEYS = f"""
CREATE FUNCTION outbox_lock_keys(keys text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    key_hash bigint;
BEGIN
    FOR key_hash IN
        SELECT DISTINCT hashtextextended(key, {KEY_LOCK_SEED}) FROM unnest(keys) AS key ORDER BY 1
    LOOP
        PERFORM pg_advisory_xact_lock(key_hash);
    END LOOP;
END $$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(LOCK_KEYS)
    op.drop_index("ix_outbox_pending_xact", table_name="outbox")
    op.drop_column("outbox", "xact_id")  # SQLite >= 3.35 drops a column natively


def downgrade() -> None:
    op.add_column("outbox", sa.Column("xact_id", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_outbox_pending_xact",
        "outbox",
        ["xact_id"],
        unique=False,
        postgresql_where=sa.text("status = 'PENDING'"),
        sqlite_where=sa.text("status = 'PENDING'"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION outbox_lock_keys(text[])")
