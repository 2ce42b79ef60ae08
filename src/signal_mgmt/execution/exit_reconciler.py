"""Reconciler: broker order status and fills -> exit intent FILLED or FAILED.

For each PLACED exit intent it asks the broker about every child order (by
client order id), stores the answers, and when every slice is final moves the
intent: FILLED if every slice filled, FAILED otherwise (the quantity that did
fill is kept on the intent: a partial exit). While slices are still working,
the running fill is recorded on the intent. It never touches trades: closing
is TMS's job (``signal_mgmt.tms.close``).

Resting limit exits (targets) that outlive ``limit_order_ttl`` are cancelled,
so a target that was never reached does not keep the trade's one live exit
slot from a stop. A target that a protective exit pre-empted (``preempted_at``)
is cancelled at once and settles as FAILED (``PREEMPTED``, its partial fill
kept) or, when the fill won the race with the cancel, FILLED: the protective
exit then goes out only for what is left, or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine, select, update

from signal_mgmt.execution.broker import BrokerGateway
from signal_mgmt.execution.exit_status import (
    PREEMPTED,
    IntentErrorHandler,
    each_intent,
    load_exit_intent,
    move_exit_intent,
)
from signal_mgmt.execution.orders import OrderRecord, cancel_order, refresh_order
from signal_mgmt.market.clock import Clock
from signal_mgmt.models import (
    MONEY_STEP,
    ExitIntent,
    ExitIntentStatus,
    Order,
    OrderStatus,
    OrderType,
    plain_decimal,
)
from signal_mgmt.storage.db import transaction
from signal_mgmt.storage.records import ExitIntentRecord
from signal_mgmt.validation import require_count, require_id


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    exit_intent_id: int
    status: ExitIntentStatus
    filled_quantity: int
    average_fill_price: Decimal | None


class Reconciler:
    def __init__(
        self,
        engine: Engine,
        broker: BrokerGateway,
        clock: Clock,
        *,
        limit_order_ttl: timedelta | None = None,
        batch_size: int = 100,
    ) -> None:
        require_count(batch_size, "batch_size")
        self.engine = engine
        self.broker = broker
        self.clock = clock
        self.limit_order_ttl = limit_order_ttl
        self.batch_size = batch_size

    def reconcile_placed(self, on_error: IntentErrorHandler | None = None) -> list[ReconcileResult]:
        """One pass over every PLACED exit intent, ``batch_size`` ids per read: the
        pre-empted ones first (a protective exit waits for each), then the rest, oldest
        first. Also the replay sweep. With ``on_error``, an intent whose reconcile
        raises is reported there and the others are still reconciled."""
        results: list[ReconcileResult] = []
        for preempted in (True, False):
            ids = self._placed_after(0, preempted=preempted)
            results += each_intent(ids, self.reconcile, on_error)
            while len(ids) == self.batch_size:  # a full page: there may be more
                ids = self._placed_after(ids[-1], preempted=preempted)
                results += each_intent(ids, self.reconcile, on_error)
        return results

    def _placed_after(self, after: int, *, preempted: bool) -> list[int]:
        marked = (
            ExitIntent.preempted_at.is_not(None) if preempted else ExitIntent.preempted_at.is_(None)
        )
        with transaction(self.engine) as conn:
            return list(
                conn.execute(
                    select(ExitIntent.id)
                    .where(
                        ExitIntent.status == ExitIntentStatus.PLACED, marked, ExitIntent.id > after
                    )
                    .order_by(ExitIntent.id)
                    .limit(self.batch_size)
                ).scalars()
            )

    def reconcile(self, exit_intent_id: int) -> ReconcileResult:
        require_id(exit_intent_id, "exit_intent_id")
        with transaction(self.engine) as conn:
            intent = load_exit_intent(conn, exit_intent_id)
            client_ids = list(
                conn.execute(
                    select(Order.client_order_id)
                    .where(Order.exit_intent_id == exit_intent_id)
                    .order_by(Order.slice_no)
                ).scalars()
            )
        if intent.status != ExitIntentStatus.PLACED:
            return _current(intent)
        orders = [refresh_order(self.engine, self.broker, cid, self.clock) for cid in client_ids]
        if intent.preempted_at is not None or self._expired(intent.order_type, intent.placed_at):
            orders = [cancel_order(self.engine, self.broker, o, self.clock) for o in orders]
        return self._settle(exit_intent_id, orders)

    def _expired(self, order_type: str, placed_at: datetime | None) -> bool:
        if self.limit_order_ttl is None or order_type != OrderType.LIMIT or placed_at is None:
            return False
        return self.clock.now() - placed_at >= self.limit_order_ttl

    def _settle(self, intent_id: int, orders: list[OrderRecord]) -> ReconcileResult:
        filled = sum(order.filled_quantity for order in orders)
        average = _average_price(orders)
        with transaction(self.engine) as conn:
            intent = load_exit_intent(conn, intent_id)
            if intent.status != ExitIntentStatus.PLACED:
                return _current(intent)
            if orders and all(order.is_final for order in orders):
                complete = all(order.status is OrderStatus.FILLED for order in orders)
                target = ExitIntentStatus.FILLED if complete else ExitIntentStatus.FAILED
                reason = None if complete else _failure(intent, orders)
                if move_exit_intent(
                    conn,
                    intent,
                    target,
                    self.clock,
                    filled_quantity=filled,
                    average_fill_price=average,
                    failure_reason=reason,
                ):
                    return ReconcileResult(intent_id, target, filled, average)
                intent = load_exit_intent(conn, intent_id)
                return _current(intent)
            if filled != intent.filled_quantity:  # partial fills, tracked as they come
                conn.execute(
                    update(ExitIntent)
                    .where(
                        ExitIntent.id == intent_id,
                        ExitIntent.status == ExitIntentStatus.PLACED,
                    )
                    .values(
                        filled_quantity=filled,
                        average_fill_price=average,
                        updated_at=self.clock.now(),
                    )
                )
            return ReconcileResult(intent_id, ExitIntentStatus.PLACED, filled, average)


def _current(intent: ExitIntentRecord) -> ReconcileResult:
    return ReconcileResult(
        intent.id,
        intent.status,
        intent.filled_quantity,
        intent.average_fill_price,
    )


def _average_price(orders: list[OrderRecord]) -> Decimal | None:
    filled = [(o.filled_quantity, o.average_price) for o in orders if o.filled_quantity > 0]
    quantity = sum(q for q, _ in filled)
    if not quantity:
        return None
    notional = sum((q * (p or Decimal(0)) for q, p in filled), Decimal(0))
    return plain_decimal((notional / quantity).quantize(MONEY_STEP))


def _failure(intent: ExitIntentRecord, orders: list[OrderRecord]) -> str:
    if intent.preempted_at is not None:
        return PREEMPTED
    for order in orders:
        if order.status is not OrderStatus.FILLED:
            return order.last_error or f"SLICE_{order.status}"
    return "NOT_FILLED"
