"""EXIT tables

Revision ID: 0004_exit
Revises: 0003_entry
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import signal_mgmt.models

revision = "0004_exit"
down_revision = "0003_entry"
branch_labels = None
depends_on = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LIVE_EXIT = sa.text("status IN ('PENDING', 'APPROVED', 'PLACED')")


def _at(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, signal_mgmt.models.UTCDateTime(), nullable=nullable)


def _money(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, signal_mgmt.models.Money(), nullable=nullable)


def _fk(column: str, table: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}")
    )


def upgrade() -> None:
    op.create_table(
        "exit_episodes",
        sa.Column("trade_id", BIGINT_PK, nullable=False),
        sa.Column("exit_reason", sa.String(length=16), nullable=False),
        sa.Column("episode_id", sa.Integer(), nullable=False),
        sa.Column("armed", sa.Boolean(), nullable=False),
        _at("fired_at"),
        _at("cooldown_until"),
        _at("cleared_at", nullable=True),
        sa.CheckConstraint("episode_id >= 1", name=op.f("ck_exit_episodes_episode_id_positive")),
        _fk("trade_id", "exit_episodes", "trades"),
        sa.PrimaryKeyConstraint("trade_id", "exit_reason", name=op.f("pk_exit_episodes")),
    )
    op.create_table(
        "exit_signals",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("trade_id", BIGINT_PK, nullable=False),
        sa.Column("exit_reason", sa.String(length=16), nullable=False),
        sa.Column("episode_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _money("price"),
        _money("trigger_level", nullable=True),
        _at("detected_at"),
        _at("published_at", nullable=True),
        _at("created_at"),
        _fk("trade_id", "exit_signals", "trades"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exit_signals")),
        sa.UniqueConstraint(
            "trade_id",
            "exit_reason",
            "episode_id",
            name=op.f("uq_exit_signals_trade_id_exit_reason_episode_id"),
        ),
    )
    op.create_index(
        "ix_exit_signals_detected",
        "exit_signals",
        ["id"],
        postgresql_where=sa.text("status = 'DETECTED'"),
        sqlite_where=sa.text("status = 'DETECTED'"),
    )
    op.create_table(
        "exit_intents",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("exit_signal_id", BIGINT_PK, nullable=False),
        sa.Column("trade_id", BIGINT_PK, nullable=False),
        sa.Column("user_broker_id", BIGINT_PK, nullable=False),
        sa.Column("exit_reason", sa.String(length=16), nullable=False),
        sa.Column("episode_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason_codes", signal_mgmt.models.JSONDocument, nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("order_type", sa.String(length=8), nullable=False),
        _money("limit_price", nullable=True),
        sa.Column("slices", signal_mgmt.models.JSONDocument, nullable=False),
        sa.Column("filled_quantity", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _money("average_fill_price", nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        _at("claimed_until", nullable=True),
        _at("created_at"),
        _at("decided_at", nullable=True),
        _at("placed_at", nullable=True),
        _at("finished_at", nullable=True),
        _at("updated_at"),
        sa.CheckConstraint("quantity >= 0", name=op.f("ck_exit_intents_quantity_not_negative")),
        sa.CheckConstraint(
            "filled_quantity >= 0", name=op.f("ck_exit_intents_filled_quantity_not_negative")
        ),
        _fk("exit_signal_id", "exit_intents", "exit_signals"),
        _fk("trade_id", "exit_intents", "trades"),
        _fk("user_broker_id", "exit_intents", "user_brokers"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exit_intents")),
        sa.UniqueConstraint("exit_signal_id", name=op.f("uq_exit_intents_exit_signal_id")),
        sa.UniqueConstraint(
            "trade_id",
            "user_broker_id",
            "exit_reason",
            "episode_id",
            name=op.f("uq_exit_intents_trade_id_user_broker_id_exit_reason_episode_id"),
        ),
    )
    op.create_index(
        "uq_exit_intents_live_trade_id",
        "exit_intents",
        ["trade_id"],
        unique=True,
        postgresql_where=LIVE_EXIT,
        sqlite_where=LIVE_EXIT,
    )
    op.create_index(
        "ix_exit_intents_open",
        "exit_intents",
        ["status", "id"],
        postgresql_where=LIVE_EXIT,
        sqlite_where=LIVE_EXIT,
    )
    op.create_table(
        "exit_trailing_marks",
        sa.Column("trade_id", BIGINT_PK, nullable=False),
        _money("water_mark"),
        _at("updated_at"),
        _fk("trade_id", "exit_trailing_marks", "trades"),
        sa.PrimaryKeyConstraint("trade_id", name=op.f("pk_exit_trailing_marks")),
    )
    # SQLite cannot add a constraint in place: batch mode rebuilds the table.
    with op.batch_alter_table("orders") as batch:
        batch.create_foreign_key(
            op.f("fk_orders_exit_intent_id_exit_intents"),
            "exit_intents",
            ["exit_intent_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_constraint(op.f("fk_orders_exit_intent_id_exit_intents"), type_="foreignkey")
    op.drop_table("exit_trailing_marks")
    op.drop_index("ix_exit_intents_open", table_name="exit_intents")
    op.drop_index("uq_exit_intents_live_trade_id", table_name="exit_intents")
    op.drop_table("exit_intents")
    op.drop_index("ix_exit_signals_detected", table_name="exit_signals")
    op.drop_table("exit_signals")
    op.drop_table("exit_episodes")
