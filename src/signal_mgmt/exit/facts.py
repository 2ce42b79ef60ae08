"""Reads for Stage B: the trade, its instrument and its user-broker, as one row of facts."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection, and_, func, select

from signal_mgmt.errors import NotFoundError
from signal_mgmt.models import (
    LIVE_EXIT_STATUSES,
    Direction,
    ExitIntent,
    ExitIntentStatus,
    Instrument,
    Trade,
    UserBroker,
)


@dataclass(frozen=True, slots=True)
class TradeContext:
    trade_id: int
    user_broker_id: int
    symbol: str
    status: str
    direction: Direction
    quantity: int
    entry_price: Decimal | None
    target_price: Decimal | None
    tick_size: Decimal
    lot_size: int
    freeze_quantity: int | None
    broker_enabled: bool
    broker_connected: bool


def load_trade_context(conn: Connection, trade_id: int) -> TradeContext:
    row = conn.execute(
        select(
            Trade.id,
            Trade.user_broker_id,
            Trade.symbol,
            Trade.status,
            Trade.direction,
            Trade.quantity,
            Trade.entry_price,
            Trade.target_price,
            Instrument.tick_size,
            Instrument.lot_size,
            Instrument.freeze_quantity,
            UserBroker.enabled,
            UserBroker.connected,
        )
        .join(Instrument, Instrument.symbol == Trade.symbol)
        .join(UserBroker, UserBroker.id == Trade.user_broker_id)
        .where(Trade.id == trade_id)
    ).first()
    if row is None:
        raise NotFoundError("trade", trade_id)
    return TradeContext(
        trade_id=row.id,
        user_broker_id=row.user_broker_id,
        symbol=row.symbol,
        status=row.status,
        direction=Direction(row.direction),
        quantity=row.quantity,
        entry_price=row.entry_price,
        target_price=row.target_price,
        tick_size=row.tick_size,
        lot_size=row.lot_size,
        freeze_quantity=row.freeze_quantity,
        broker_enabled=row.enabled,
        broker_connected=row.connected,
    )


def exited_quantity(conn: Connection, trade_id: int) -> int:
    """Quantity already sold/bought back by exits that failed after filling in part."""
    total = conn.execute(
        select(func.coalesce(func.sum(ExitIntent.filled_quantity), 0)).where(
            ExitIntent.trade_id == trade_id, ExitIntent.status == ExitIntentStatus.FAILED.value
        )
    ).scalar_one()
    return int(total)


def has_live_exit(conn: Connection, trade_id: int, other_than: int | None = None) -> bool:
    condition = and_(ExitIntent.trade_id == trade_id, ExitIntent.status.in_(LIVE_EXIT_STATUSES))
    if other_than is not None:
        condition = and_(condition, ExitIntent.id != other_than)
    found = conn.execute(select(ExitIntent.id).where(condition).limit(1)).first()
    return found is not None
