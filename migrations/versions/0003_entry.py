"""reference data and ENTRY tables

Revision ID: 0003_entry
Revises: 0002_inbox
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import signal_mgmt.models

revision = "0003_entry"
down_revision = "0002_inbox"
branch_labels = None
depends_on = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column[int]:
    return sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False)


def _ref(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, BIGINT_PK, nullable=nullable)


def _money(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, signal_mgmt.models.Money(), nullable=nullable)


def _at(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, signal_mgmt.models.UTCDateTime(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "instruments",
        _id(),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("exchange", sa.String(length=16), nullable=False),
        sa.Column("segment", sa.String(length=16), nullable=False),
        _money("tick_size"),
        sa.Column("lot_size", sa.Integer(), nullable=False),
        sa.Column("freeze_quantity", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        _at("created_at"),
        sa.CheckConstraint("lot_size > 0", name=op.f("ck_instruments_lot_size_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instruments")),
        sa.UniqueConstraint("symbol", name=op.f("uq_instruments_symbol")),
    )
    op.create_table(
        "user_brokers",
        _id(),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("broker", sa.String(length=32), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("connected", sa.Boolean(), server_default=sa.true(), nullable=False),
        _money("available_capital"),
        sa.Column("max_open_trades", sa.Integer(), nullable=True),
        _money("max_exposure_per_symbol", nullable=True),
        _money("max_total_exposure", nullable=True),
        sa.Column("sizing_mode", sa.String(length=24), nullable=False),
        sa.Column("fixed_quantity", sa.Integer(), nullable=True),
        _money("fixed_capital", nullable=True),
        _money("risk_amount", nullable=True),
        _money("reward_risk_ratio"),
        sa.Column("entry_window_start", sa.Time(), nullable=True),
        sa.Column("entry_window_end", sa.Time(), nullable=True),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_brokers")),
        sa.UniqueConstraint("user_id", "broker", name=op.f("uq_user_brokers_user_id_broker")),
    )
    op.create_table(
        "subscriptions",
        _id(),
        _ref("user_broker_id"),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("confluence_type", sa.String(length=64), nullable=False),
        _at("created_at"),
        sa.ForeignKeyConstraint(
            ["user_broker_id"],
            ["user_brokers.id"],
            name=op.f("fk_subscriptions_user_broker_id_user_brokers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint(
            "user_broker_id",
            "symbol",
            "confluence_type",
            name=op.f("uq_subscriptions_user_broker_id_symbol_confluence_type"),
        ),
    )
    op.create_index(
        "ix_subscriptions_symbol_confluence_type", "subscriptions", ["symbol", "confluence_type"]
    )
    op.create_table(
        "signals",
        _id(),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("confluence_type", sa.String(length=64), nullable=False),
        sa.Column("signal_day", sa.Date(), nullable=False),
        _money("effective_floor"),
        _money("effective_ceiling"),
        sa.Column("status", sa.String(length=16), nullable=False),
        _at("detected_at"),
        _at("published_at", nullable=True),
        sa.Column("metadata", signal_mgmt.models.JSONDocument, nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signals")),
        sa.UniqueConstraint(
            "symbol",
            "direction",
            "confluence_type",
            "signal_day",
            "effective_floor",
            "effective_ceiling",
            name=op.f(
                "uq_signals_symbol_direction_confluence_type_signal_day_effective_floor_effective_ceiling"
            ),
        ),
    )
    op.create_index(
        "ix_signals_detected",
        "signals",
        ["id"],
        postgresql_where=sa.text("status = 'DETECTED'"),
        sqlite_where=sa.text("status = 'DETECTED'"),
    )
    op.create_table(
        "signal_deliveries",
        _id(),
        _ref("signal_id"),
        _ref("user_broker_id"),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        _at("created_at"),
        _at("consumed_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["signal_id"], ["signals.id"], name=op.f("fk_signal_deliveries_signal_id_signals")
        ),
        sa.ForeignKeyConstraint(
            ["user_broker_id"],
            ["user_brokers.id"],
            name=op.f("fk_signal_deliveries_user_broker_id_user_brokers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signal_deliveries")),
        sa.UniqueConstraint(
            "signal_id",
            "user_broker_id",
            name=op.f("uq_signal_deliveries_signal_id_user_broker_id"),
        ),
    )
    op.create_index(
        "ix_signal_deliveries_unconsumed",
        "signal_deliveries",
        ["id"],
        postgresql_where=sa.text("consumed_at IS NULL"),
        sqlite_where=sa.text("consumed_at IS NULL"),
    )
    op.create_table(
        "trade_intents",
        _id(),
        _ref("delivery_id"),
        _ref("signal_id"),
        _ref("user_broker_id"),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason_codes", signal_mgmt.models.JSONDocument, nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        _money("entry_price", nullable=True),
        _money("target_price", nullable=True),
        _money("stop_price", nullable=True),
        _at("created_at"),
        _at("updated_at"),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["signal_deliveries.id"],
            name=op.f("fk_trade_intents_delivery_id_signal_deliveries"),
        ),
        sa.ForeignKeyConstraint(
            ["signal_id"], ["signals.id"], name=op.f("fk_trade_intents_signal_id_signals")
        ),
        sa.ForeignKeyConstraint(
            ["user_broker_id"],
            ["user_brokers.id"],
            name=op.f("fk_trade_intents_user_broker_id_user_brokers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trade_intents")),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_trade_intents_delivery_id")),
    )
    op.create_index("ix_trade_intents_status", "trade_intents", ["status"])
    op.create_index(
        "ix_trade_intents_user_broker_id_status", "trade_intents", ["user_broker_id", "status"]
    )
    op.create_table(
        "trades",
        _id(),
        _ref("trade_intent_id"),
        _ref("user_broker_id"),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        _money("entry_price", nullable=True),
        _money("target_price"),
        _money("stop_price"),
        sa.Column("status", sa.String(length=16), nullable=False),
        _at("created_at"),
        _at("opened_at", nullable=True),
        _at("closed_at", nullable=True),
        _money("exit_price", nullable=True),
        _money("pnl", nullable=True),
        _at("updated_at"),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_trades_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["trade_intent_id"],
            ["trade_intents.id"],
            name=op.f("fk_trades_trade_intent_id_trade_intents"),
        ),
        sa.ForeignKeyConstraint(
            ["user_broker_id"],
            ["user_brokers.id"],
            name=op.f("fk_trades_user_broker_id_user_brokers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trades")),
        sa.UniqueConstraint("trade_intent_id", name=op.f("uq_trades_trade_intent_id")),
    )
    op.create_index("ix_trades_symbol_status", "trades", ["symbol", "status"])
    op.create_index("ix_trades_user_broker_id_status", "trades", ["user_broker_id", "status"])
    op.create_table(
        "orders",
        _id(),
        sa.Column("client_order_id", sa.String(length=20), nullable=False),
        sa.Column("purpose", sa.String(length=8), nullable=False),
        _ref("trade_id"),
        _ref("trade_intent_id", nullable=True),
        sa.Column("exit_intent_id", sa.BigInteger(), nullable=True),
        _ref("user_broker_id"),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("order_type", sa.String(length=8), nullable=False),
        _money("limit_price", nullable=True),
        sa.Column("slice_no", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("broker_order_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("filled_quantity", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _money("average_price", nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _at("created_at"),
        _at("updated_at"),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_orders_quantity_positive")),
        sa.CheckConstraint("slice_no >= 1", name=op.f("ck_orders_slice_no_positive")),
        sa.ForeignKeyConstraint(
            ["trade_id"], ["trades.id"], name=op.f("fk_orders_trade_id_trades")
        ),
        sa.ForeignKeyConstraint(
            ["trade_intent_id"],
            ["trade_intents.id"],
            name=op.f("fk_orders_trade_intent_id_trade_intents"),
        ),
        sa.ForeignKeyConstraint(
            ["user_broker_id"],
            ["user_brokers.id"],
            name=op.f("fk_orders_user_broker_id_user_brokers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("client_order_id", name=op.f("uq_orders_client_order_id")),
    )
    op.create_index("ix_orders_trade_id", "orders", ["trade_id"])
    op.create_index("ix_orders_trade_intent_id", "orders", ["trade_intent_id"])
    op.create_index("ix_orders_exit_intent_id", "orders", ["exit_intent_id"])


def downgrade() -> None:
    for index, table in (
        ("ix_orders_exit_intent_id", "orders"),
        ("ix_orders_trade_intent_id", "orders"),
        ("ix_orders_trade_id", "orders"),
        ("ix_trades_user_broker_id_status", "trades"),
        ("ix_trades_symbol_status", "trades"),
        ("ix_trade_intents_user_broker_id_status", "trade_intents"),
        ("ix_trade_intents_status", "trade_intents"),
        ("ix_signal_deliveries_unconsumed", "signal_deliveries"),
        ("ix_signals_detected", "signals"),
        ("ix_subscriptions_symbol_confluence_type", "subscriptions"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "orders",
        "trades",
        "trade_intents",
        "signal_deliveries",
        "signals",
        "subscriptions",
        "user_brokers",
        "instruments",
    ):
        op.drop_table(table)
