"""Reads for Stage B: the trade, its instrument and its user-broker, as one row of facts."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection, select

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
_COUNTED = (*LIVE_EXIT_STATUSES, FILLED, FAILED)
"""Every status but REJECTED: what an exit decision must know about."""


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


@dataclass(frozen=True, slots=True)
class LiveExit:
    """The trade's one live exit intent (PENDING / APPROVED / PLACED)."""

    id: int
    reason: ExitReason
    status: ExitIntentStatus
    preempted: bool


@dataclass(frozen=True, slots=True)
class ExitHistory:
    """What the trade's exit intents say, read in one statement.

    ``exited_quantity``: FILLED exits' quantity and what FAILED exits filled. A live
    exit's quantity is not subtracted: a second live exit is refused on its own
    (EXIT_ALREADY_LIVE), and the ``exit_budgets`` CHECK holds the sum.
    ``filled``: a FILLED exit exists, so the position is gone and only TMS's close
    is still to come.
    """

    live: LiveExit | None
    exited_quantity: int
    filled: bool


def exit_history(conn: Connection, trade_id: int, other_than: int | None = None) -> ExitHistory:
    """The trade's live exit (other than ``other_than``), exited quantity and FILLED flag."""
    rows = conn.execute(
        select(
            ExitIntent.id,
            ExitIntent.exit_reason,
            ExitIntent.status,
            ExitIntent.preempted_at,
            ExitIntent.quantity,
            ExitIntent.filled_quantity,
        )
        .where(ExitIntent.trade_id == trade_id, ExitIntent.status.in_(_COUNTED))
        .order_by(ExitIntent.id)
    ).all()
    live = next(
        (
            LiveExit(row.id, ExitReason(row.exit_reason), row.status, row.preempted_at is not None)
            for row in rows
            if row.status in LIVE_EXIT_STATUSES and row.id != other_than
        ),
        None,
    )
    exited = sum(
        row.quantity if row.status == FILLED else row.filled_quantity
        for row in rows
        if row.status in (FILLED, FAILED)
    )
    return ExitHistory(live, int(exited), any(row.status == FILLED for row in rows))
