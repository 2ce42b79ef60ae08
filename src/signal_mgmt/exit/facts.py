"""Reads for Stage B: the trade, its instrument and its user-broker, as one row of facts."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection, and_, case, func, select

from signal_mgmt.errors import NotFoundError
from signal_mgmt.models import (
    LIVE_EXIT_STATUSES,
    Direction,
    ExitIntent,
    ExitIntentStatus,
    ExitReason,
    Instrument,
    Trade,
    TradeStatus,
    UserBroker,
)

FILLED, FAILED = ExitIntentStatus.FILLED, ExitIntentStatus.FAILED


@dataclass(frozen=True, slots=True)
class TradeContext:
    trade_id: int
    user_broker_id: int
    symbol: str
    status: TradeStatus
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
    """Quantity already gone: FILLED exits' quantity and what FAILED exits filled.

    A live exit's quantity is not subtracted here: a second live exit is refused
    on its own (EXIT_ALREADY_LIVE), and the ``exit_budgets`` CHECK holds the sum.
    """
    gone = case(
        (ExitIntent.status == FILLED, ExitIntent.quantity),
        (ExitIntent.status == FAILED, ExitIntent.filled_quantity),
        else_=0,
    )
    total = conn.execute(
        select(func.coalesce(func.sum(gone), 0)).where(ExitIntent.trade_id == trade_id)
    ).scalar_one()
    return int(total)


def has_filled_exit(conn: Connection, trade_id: int) -> bool:
    """A FILLED exit: the position is gone, only TMS's close is still to come."""
    found = conn.execute(
        select(ExitIntent.id)
        .where(ExitIntent.trade_id == trade_id, ExitIntent.status == FILLED)
        .limit(1)
    ).first()
    return found is not None


@dataclass(frozen=True, slots=True)
class LiveExit:
    """The trade's one live exit intent (PENDING / APPROVED / PLACED)."""

    id: int
    reason: ExitReason
    status: ExitIntentStatus
    preempted: bool


def live_exit(conn: Connection, trade_id: int, other_than: int | None = None) -> LiveExit | None:
    condition = and_(ExitIntent.trade_id == trade_id, ExitIntent.status.in_(LIVE_EXIT_STATUSES))
    if other_than is not None:
        condition = and_(condition, ExitIntent.id != other_than)
    row = conn.execute(
        select(
            ExitIntent.id, ExitIntent.exit_reason, ExitIntent.status, ExitIntent.preempted_at
        ).where(condition)
    ).first()
    if row is None:
        return None
    return LiveExit(
        id=row.id,
        reason=ExitReason(row.exit_reason),
        status=row.status,
        preempted=row.preempted_at is not None,
    )
