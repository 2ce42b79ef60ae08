"""TMS: close a trade when its exit is FILLED (OPEN -> CLOSED, exit price, P&L).

The exit path (SMS, execution) never writes ``trades``: it ends with an exit
intent FILLED, and this module, TMS's, turns that into the closure. It runs
from the EXIT_INTENT_FILLED event or from ``close_filled`` (also the replay
sweep). The exit price is the volume-weighted price of every exit order fill of the
trade (an earlier exit that failed after a partial fill counts), and P&L is
computed from those fills, as the broker reported them, in Decimal, direction-aware:
(exit - entry) x qty for LONG, (entry - exit) x qty for SHORT.
Exactly once: the UPDATE is guarded by ``status = 'OPEN'`` and TRADE_CLOSED
has a deterministic event id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, Engine, select

from signal_mgmt.errors import IllegalTransitionError, NotFoundError
from signal_mgmt.execution.exit_status import IntentErrorHandler, each_intent
from signal_mgmt.market.clock import Clock
from signal_mgmt.models import (
    MONEY_STEP,
    Direction,
    ExitIntent,
    ExitIntentStatus,
    Order,
    Trade,
    TradeStatus,
    plain_decimal,
)
from signal_mgmt.outbox.emit import emit
from signal_mgmt.outbox.events import EventPayload
from signal_mgmt.storage.db import Executor, transaction
from signal_mgmt.storage.locks import lock_trade
from signal_mgmt.storage.state import transition
from signal_mgmt.tms.events import trade_event
from signal_mgmt.validation import require_id

TRADE_CLOSED = "TRADE_CLOSED"


class TradeClosed(EventPayload):
    trade_id: int
    exit_intent_id: int
    user_broker_id: int
    symbol: str
    direction: str
    quantity: int
    entry_price: Decimal
    exit_price: Decimal
    pnl: Decimal
    exit_reason: str
    closed_at: datetime


@dataclass(frozen=True, slots=True)
class CloseResult:
    trade_id: int
    closed: bool  # False: it was already closed (by this or another call)
    exit_price: Decimal | None
    pnl: Decimal | None


def realized_pnl(direction: Direction, entry: Decimal, fills: list[tuple[int, Decimal]]) -> Decimal:
    """Sum over fills of (price - entry) x qty for LONG, (entry - price) x qty for SHORT."""
    sign = 1 if direction is Direction.LONG else -1
    return sum((sign * (price - entry) * qty for qty, price in fills), Decimal(0))


class TradeCloser:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def close_for_exit(
        self, exit_intent_id: int, connection: Executor | None = None
    ) -> CloseResult:
        """Close the trade of a FILLED exit intent; a second call changes nothing."""
        require_id(exit_intent_id, "exit_intent_id")
        with transaction(self.engine, connection) as conn:
            intent = conn.execute(
                select(ExitIntent.__table__).where(ExitIntent.id == exit_intent_id)
            ).first()
            if intent is None:
                raise NotFoundError("exit_intent", exit_intent_id)
            if intent.status != ExitIntentStatus.FILLED:
                raise IllegalTransitionError(
                    "trades",
                    intent.trade_id,
                    expected=f"exit intent {exit_intent_id} FILLED",
                    target=TradeStatus.CLOSED,
                    actual=f"exit intent {intent.status}",
                )
            lock_trade(conn, intent.trade_id)
            trade = conn.execute(select(Trade.__table__).where(Trade.id == intent.trade_id)).one()
            if trade.status == TradeStatus.CLOSED:
                return CloseResult(trade.id, False, trade.exit_price, trade.pnl)
            fills = _exit_fills(conn, trade.id)
            quantity = sum(qty for qty, _ in fills)
            average = sum((q * p for q, p in fills), Decimal(0)) / quantity
            exit_price = plain_decimal(average.quantize(MONEY_STEP))
            pnl = realized_pnl(Direction(trade.direction), trade.entry_price, fills)
            now = self.clock.now()
            transition(
                conn,
                Trade,
                trade.id,
                expected=[TradeStatus.OPEN],
                target=TradeStatus.CLOSED,
                values={"closed_at": now, "exit_price": exit_price, "pnl": pnl, "updated_at": now},
            )
            payload = TradeClosed(
                trade_id=trade.id,
                exit_intent_id=exit_intent_id,
                user_broker_id=trade.user_broker_id,
                symbol=trade.symbol,
                direction=trade.direction,
                quantity=quantity,
                entry_price=trade.entry_price,
                exit_price=exit_price,
                pnl=pnl,
                exit_reason=intent.exit_reason,
                closed_at=now,
            )
            emit(conn, [trade_event(TRADE_CLOSED, trade.id, payload)], self.clock)
            return CloseResult(trade.id, True, exit_price, pnl)

    def close_filled(
        self, connection: Executor | None = None, on_error: IntentErrorHandler | None = None
    ) -> list[CloseResult]:
        """Close every OPEN trade whose exit is FILLED (the sweep after reconciling);
        with ``on_error``, one exit whose close raises does not hold back the others."""
        with transaction(self.engine, connection) as conn:
            ids = list(
                conn.execute(
                    select(ExitIntent.id)
                    .join(Trade, Trade.id == ExitIntent.trade_id)
                    .where(
                        ExitIntent.status == ExitIntentStatus.FILLED,
                        Trade.status == TradeStatus.OPEN,
                    )
                    .order_by(ExitIntent.id)
                ).scalars()
            )
        return each_intent(
            ids, lambda intent_id: self.close_for_exit(intent_id, connection), on_error
        )


def _exit_fills(conn: Connection, trade_id: int) -> list[tuple[int, Decimal]]:
    """(quantity, average price) of every exit order that filled, as the broker reported it.

    Read per order, not from the intents' averages, so that no average of
    averages rounds the P&L.
    """
    done = [ExitIntentStatus.FILLED, ExitIntentStatus.FAILED]
    rows = conn.execute(
        select(Order.filled_quantity, Order.average_price)
        .join(ExitIntent, ExitIntent.id == Order.exit_intent_id)
        .where(
            ExitIntent.trade_id == trade_id,
            ExitIntent.status.in_(done),
            Order.filled_quantity > 0,
        )
        .order_by(Order.id)
    ).all()
    return [(int(qty), Decimal(price)) for qty, price in rows]
