"""outbox

Revision ID: 0001_outbox
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import signal_mgmt.models

revision = "0001_outbox"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("aggregate_type", sa.String(length=64), nullable=False),
        sa.Column("aggregate_id", sa.String(length=128), nullable=False),
        sa.Column("partition_key", sa.String(length=200), nullable=False),
        sa.Column("payload", signal_mgmt.models.JSONDocument, nullable=False),
        sa.Column("headers", signal_mgmt.models.JSONDocument, nullable=False),
        sa.Column("created_at", signal_mgmt.models.UTCDateTime(), nullable=False),
        sa.Column("available_at", signal_mgmt.models.UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="PENDING", nullable=False),
        sa.Column("published_at", signal_mgmt.models.UTCDateTime(), nullable=True),
        sa.Column("xact_id", sa.BigInteger(), nullable=True),
        sa.Column("claim_token", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
    )
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["id"],
        unique=False,
        postgresql_where=sa.text("status = 'PENDING'"),
        sqlite_where=sa.text("status = 'PENDING'"),
    )
    op.create_index(
        "ix_outbox_pending_key",
        "outbox",
        ["partition_key", "id"],
        unique=False,
        postgresql_where=sa.text("status <> 'PUBLISHED'"),
        sqlite_where=sa.text("status <> 'PUBLISHED'"),
    )
    op.create_index(
        "ix_outbox_dead",
        "outbox",
        ["partition_key", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'DEAD'"),
        sqlite_where=sa.text("status = 'DEAD'"),
    )
    op.create_index(
        "ix_outbox_pending_available",
        "outbox",
        ["available_at"],
        unique=False,
        postgresql_where=sa.text("status = 'PENDING'"),
        sqlite_where=sa.text("status = 'PENDING'"),
    )
    op.create_index(
        "ix_outbox_pending_xact",
        "outbox",
        ["xact_id"],
        unique=False,
        postgresql_where=sa.text("status = 'PENDING'"),
        sqlite_where=sa.text("status = 'PENDING'"),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Wakes LISTENing relays at commit (dropped on rollback), for every INSERT
        # into the outbox, without a round trip of its own (outbox/wakeup.py).
        op.execute(
            "CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_notify('signal_mgmt_outbox', ''); RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox "
            "FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER outbox_notify ON outbox")
        op.execute("DROP FUNCTION outbox_notify()")
    op.drop_index("ix_outbox_pending_xact", table_name="outbox")
    op.drop_index("ix_outbox_pending_available", table_name="outbox")
    op.drop_index("ix_outbox_dead", table_name="outbox")
    op.drop_index("ix_outbox_pending_key", table_name="outbox")
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.drop_table("outbox")
