"""Row factories for the ENTRY tables (plain Core inserts, for tests below the services)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, insert, select

from signal_mgmt.models import (
    Instrument,
    Signal,
    SignalDelivery,
    Trade,
    TradeIntent,
    UserBroker,
)

AT = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


def _insert(conn: Connection, entity: Any, **values: Any) -> int:
    return int(conn.execute(insert(entity).returning(entity.id), [values]).scalar_one())


def seed_trade(conn: Connection, symbol: str = "INFY", quantity: int = 10) -> dict[str, int]:
    """instrument, user-broker, signal, delivery, APPROVED intent, PENDING_ENTRY trade."""
    _insert(
        conn,
        Instrument,
        symbol=symbol,
        exchange="NSE",
        segment="EQ",
        tick_size=Decimal("0.05"),
        lot_size=1,
        freeze_quantity=None,
        active=True,
        created_at=AT,
    )
    user_broker = _insert(
        conn,
        UserBroker,
        user_id=f"u-{symbol}",
        broker="SIM",
        enabled=True,
        connected=True,
        available_capital=Decimal(1_000_000),
        sizing_mode="FIXED_QUANTITY",
        fixed_quantity=quantity,
        reward_risk_ratio=Decimal(2),
        created_at=AT,
    )
    signal = _insert(
        conn,
        Signal,
        symbol=symbol,
        direction="LONG",
        confluence_type="VWAP",
        signal_day=date(2026, 11, 25),
        effective_floor=Decimal("99.00"),
        effective_ceiling=Decimal("100.00"),
        status="PUBLISHED",
        detected_at=AT,
        metadata={},
        created_at=AT,
    )
    delivery = _insert(
        conn,
        SignalDelivery,
        signal_id=signal,
        user_broker_id=user_broker,
        symbol=symbol,
        created_at=AT,
        consumed_at=AT,
    )
    intent = _insert(
        conn,
        TradeIntent,
        delivery_id=delivery,
        signal_id=signal,
        user_broker_id=user_broker,
        symbol=symbol,
        direction="LONG",
        decision="APPROVED",
        status="APPROVED",
        reason_codes=[],
        quantity=quantity,
        entry_price=Decimal("100.00"),
        target_price=Decimal("102.00"),
        stop_price=Decimal("99.00"),
        created_at=AT,
        updated_at=AT,
    )
    trade = _insert(
        conn,
        Trade,
        trade_intent_id=intent,
        user_broker_id=user_broker,
        symbol=symbol,
        direction="LONG",
        quantity=quantity,
        target_price=Decimal("102.00"),
        stop_price=Decimal("99.00"),
        status="PENDING_ENTRY",
        created_at=AT,
        updated_at=AT,
    )
    return {"user_broker": user_broker, "intent": intent, "trade": trade}


def count(conn: Connection, entity: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(entity)).scalar_one())
