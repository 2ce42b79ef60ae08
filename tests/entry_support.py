"""Row factories for the trade tables (plain Core inserts, for tests below the services)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
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

AT = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)  # Wednesday 09:30 Asia/Kolkata
_serial = itertools.count(1)


@dataclass(frozen=True)
class TradeChain:
    user_broker: int
    intent: int
    trade: int


def _insert(conn: Connection, entity: Any, **values: Any) -> int:
    return int(conn.execute(insert(entity).returning(entity.id), [values]).scalar_one())


def trade_chain(
    conn: Connection,
    *,
    symbol: str = "INFY",
    direction: str = "LONG",
    quantity: int = 10,
    entry: str = "100",
    target: str = "110",
    stop: str = "95",
    tick: str = "0.05",
    lot: int = 1,
    freeze: int | None = None,
    enabled: bool = True,
    connected: bool = True,
    status: str = "OPEN",
    intent_status: str = "FILLED",
) -> TradeChain:
    """A trade with its instrument, user-broker, signal, delivery and intent.

    A PENDING_ENTRY trade has no entry price or opening time yet; any other has both.
    """
    n = next(_serial)
    if conn.execute(select(Instrument.id).where(Instrument.symbol == symbol)).first() is None:
        _insert(
            conn,
            Instrument,
            symbol=symbol,
            exchange="NSE",
            segment="EQ",
            tick_size=Decimal(tick),
            lot_size=lot,
            freeze_quantity=freeze,
            active=True,
            created_at=AT,
        )
    user_broker = _insert(
        conn,
        UserBroker,
        user_id=f"user-{n}",
        broker="SIM",
        enabled=enabled,
        connected=connected,
        available_capital=Decimal(10_000_000),
        sizing_mode="FIXED_QUANTITY",
        fixed_quantity=quantity,
        reward_risk_ratio=Decimal(2),
        created_at=AT,
    )
    levels = sorted([Decimal(target), Decimal(stop)])
    signal = _insert(
        conn,
        Signal,
        symbol=symbol,
        direction=direction,
        confluence_type=f"T{n}",
        signal_day=date(2026, 11, 25),
        effective_floor=levels[0],
        effective_ceiling=levels[1],
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
        direction=direction,
        decision="APPROVED",
        status=intent_status,
        reason_codes=[],
        quantity=quantity,
        entry_price=Decimal(entry),
        target_price=Decimal(target),
        stop_price=Decimal(stop),
        created_at=AT,
        updated_at=AT,
    )
    opened = status != "PENDING_ENTRY"
    trade = _insert(
        conn,
        Trade,
        trade_intent_id=intent,
        user_broker_id=user_broker,
        symbol=symbol,
        direction=direction,
        quantity=quantity,
        entry_price=Decimal(entry) if opened else None,
        target_price=Decimal(target),
        stop_price=Decimal(stop),
        status=status,
        created_at=AT,
        opened_at=AT if opened else None,
        updated_at=AT,
    )
    return TradeChain(user_broker=user_broker, intent=intent, trade=trade)


def seed_trade(conn: Connection, symbol: str = "INFY", quantity: int = 10) -> dict[str, int]:
    """An APPROVED intent and its PENDING_ENTRY trade, with the rows they hang on."""
    chain = trade_chain(
        conn,
        symbol=symbol,
        quantity=quantity,
        target="102",
        stop="99",
        status="PENDING_ENTRY",
        intent_status="APPROVED",
    )
    return {"user_broker": chain.user_broker, "intent": chain.intent, "trade": chain.trade}


def count(conn: Connection, entity: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(entity)).scalar_one())
