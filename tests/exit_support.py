"""Factories for the EXIT tests: OPEN trades (with their reference rows) and row counts."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select

from signal_mgmt.exit.candidate import ExitCandidate
from signal_mgmt.exit.conditions import ExitReason
from signal_mgmt.models import (
    ExitEpisode,
    ExitIntent,
    ExitSignal,
    ExitTrailingMark,
    Instrument,
    Order,
    OutboxRow,
    Signal,
    SignalDelivery,
    Trade,
    TradeIntent,
    UserBroker,
)

AT = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)  # Wednesday 09:30 Asia/Kolkata
_serial = itertools.count(1)


def _insert(conn: Connection, entity: Any, **values: Any) -> int:
    return int(conn.execute(insert(entity).returning(entity.id), values).scalar_one())


def open_trade(
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
) -> int:
    """An OPEN trade with its instrument, user-broker, signal, delivery and intent."""
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
        status="FILLED",
        reason_codes=[],
        quantity=quantity,
        entry_price=Decimal(entry),
        target_price=Decimal(target),
        stop_price=Decimal(stop),
        created_at=AT,
        updated_at=AT,
    )
    return _insert(
        conn,
        Trade,
        trade_intent_id=intent,
        user_broker_id=user_broker,
        symbol=symbol,
        direction=direction,
        quantity=quantity,
        entry_price=Decimal(entry),
        target_price=Decimal(target),
        stop_price=Decimal(stop),
        status=status,
        created_at=AT,
        opened_at=AT,
        updated_at=AT,
    )


def candidate(
    trade_id: int,
    reason: ExitReason = ExitReason.STOP_LOSS,
    price: str = "94.95",
    at: datetime = AT,
) -> ExitCandidate:
    return ExitCandidate(trade_id=trade_id, reason=reason, price=Decimal(price), detected_at=at)


EXIT_TABLES = (ExitEpisode, ExitSignal, ExitIntent, ExitTrailingMark, Order, OutboxRow)


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.__tablename__: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in EXIT_TABLES
        }


def rows(engine: Engine, entity: Any, *where: Any) -> list[Any]:
    with engine.connect() as conn:
        order = entity.__table__.primary_key.columns
        return list(conn.execute(select(entity.__table__).where(*where).order_by(*order)))


def event_types(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(OutboxRow.event_type).order_by(OutboxRow.id)).scalars())


def seed(engine: Engine, **kwargs: Any) -> int:
    with engine.begin() as conn:
        return open_trade(conn, **kwargs)
