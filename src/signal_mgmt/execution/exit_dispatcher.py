"""ExitIntentDispatcher: the ONLY path from an exit decision to a broker order.

It sends nothing but APPROVED exit intents, and nothing for one that a
protective exit pre-empted (``preempted_at``): its unsent orders are withdrawn,
and it goes FAILED (``PREEMPTED``) unless an order already reached the broker,
in which case it goes PLACED and the reconciler cancels it. Each claimed intent becomes one
order per slice, recorded with a client order id derived from the intent
(``EX<id>-<slice>``) and sent with ``place_with_reconcile``, so a retry adopts
an order the broker already has instead of placing it again. Then:

- every slice is at the broker (possibly some definitely refused): PLACED;
- nothing is at the broker (refused, or the broker unreachable on every try):
  FAILED — the trade stays OPEN and a later episode may try again;
- some slice's outcome is unknown (or unsent while others are live): the
  intent stays APPROVED and is taken up again when its lease runs out; the
  next pass settles each slice by client order id before sending anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, or_, select, update

from signal_mgmt.errors import InvalidInputError
from signal_mgmt.execution.broker import BrokerGateway
from signal_mgmt.execution.exit_status import (
    PREEMPTED,
    IntentErrorHandler,
    each_intent,
    load_exit_intent,
    move_exit_intent,
)
from signal_mgmt.execution.orders import (
    NewOrder,
    OrderRecord,
    place_with_reconcile,
    record_orders,
    withdraw_order,
)
from signal_mgmt.market.clock import Clock
from signal_mgmt.models import (
    ExitIntent,
    ExitIntentStatus,
    OrderPurpose,
    OrderStatus,
    Trade,
)
from signal_mgmt.storage.db import is_postgres, transaction
from signal_mgmt.storage.records import ExitIntentRecord
from signal_mgmt.validation import require_count

_AT_BROKER = {
    OrderStatus.ACCEPTED,
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.FILLED,
    OrderStatus.CANCELLED,
}


@dataclass(frozen=True, slots=True)
class DispatchResult:
    exit_intent_id: int
    status: ExitIntentStatus
    orders: tuple[OrderRecord, ...]


class ExitIntentDispatcher:
    def __init__(
        self,
        engine: Engine,
        broker: BrokerGateway,
        clock: Clock,
        *,
        lease: timedelta = timedelta(seconds=30),
        batch_size: int = 50,
        max_attempts: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        require_count(batch_size, "batch_size")
        if not isinstance(lease, timedelta) or lease <= timedelta(0):
            raise InvalidInputError("lease must be a positive timedelta", field="lease")
        self.engine = engine
        self.broker = broker
        self.clock = clock
        self.lease = lease
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.sleep = sleep

    def dispatch_pending(self, on_error: IntentErrorHandler | None = None) -> list[DispatchResult]:
        """Claim up to ``batch_size`` APPROVED intents and send them. Also the replay sweep.

        With ``on_error``, an intent whose dispatch raises is reported there and the
        others are still sent (its lease runs out and a later pass retries it)."""
        return each_intent(self._claim(), self._dispatch, on_error)

    def _claim(self) -> list[int]:
        """Lease APPROVED intents to this dispatcher, committed before any broker call.

        A lease rather than a row lock held across the broker call: a broker call
        must not keep a transaction open (and SQLite has one writer). SKIP LOCKED
        lets concurrent dispatchers on PostgreSQL pass each other's claims instead
        of queueing on them; the claim's own UPDATE re-checks the lease, so two
        dispatchers never hold one intent. A crashed dispatcher's lease runs out
        and the intent is claimed again, which is safe: the orders are reconciled
        by client order id before anything is re-sent.
        """
        with transaction(self.engine) as conn:
            now = self.clock.now()
            query = (
                select(ExitIntent.id)
                .where(
                    ExitIntent.status == ExitIntentStatus.APPROVED,
                    or_(ExitIntent.claimed_until.is_(None), ExitIntent.claimed_until <= now),
                )
                .order_by(ExitIntent.id)
                .limit(self.batch_size)
            )
            if is_postgres(conn):
                query = query.with_for_update(skip_locked=True)
            ids = list(conn.execute(query).scalars())
            if ids:
                conn.execute(
                    update(ExitIntent)
                    .where(ExitIntent.id.in_(ids))
                    .values(claimed_until=now + self.lease)
                )
            return ids

    def _dispatch(self, intent_id: int) -> DispatchResult:
        with transaction(self.engine) as conn:
            intent = load_exit_intent(conn, intent_id)
            if intent.status != ExitIntentStatus.APPROVED:
                return DispatchResult(intent_id, intent.status, ())
            symbol = conn.execute(
                select(Trade.symbol).where(Trade.id == intent.trade_id)
            ).scalar_one()
            orders = record_orders(conn, _child_orders(intent, symbol), self.clock)
        if intent.preempted_at is not None:
            return self._withdraw(intent_id, orders)
        sent = tuple(
            order
            if order.is_final
            else place_with_reconcile(
                self.engine,
                self.broker,
                order.client_order_id,
                self.clock,
                max_attempts=self.max_attempts,
                backoff=self.backoff,
                sleep=self.sleep,
            )
            for order in orders
        )
        return DispatchResult(intent_id, self._settle(intent_id, sent), sent)

    def _withdraw(self, intent_id: int, orders: list[OrderRecord]) -> DispatchResult:
        """A pre-empted intent: send nothing; settle what may already be at the broker."""
        settled = tuple(
            order
            if order.is_final
            else withdraw_order(
                self.engine, self.broker, order.client_order_id, self.clock, PREEMPTED
            )
            for order in orders
        )
        return DispatchResult(intent_id, self._settle(intent_id, settled), settled)

    def _settle(self, intent_id: int, orders: tuple[OrderRecord, ...]) -> ExitIntentStatus:
        statuses = {order.status for order in orders}
        at_broker = bool(statuses & _AT_BROKER)
        unsent = OrderStatus.NEW in statuses
        if OrderStatus.UNKNOWN in statuses or (unsent and at_broker):
            return ExitIntentStatus.APPROVED  # settled by a later pass, by client order id
        target = ExitIntentStatus.PLACED if at_broker else ExitIntentStatus.FAILED
        refused = next((o.last_error for o in orders if o.last_error), None) or "NOT_PLACED"
        with transaction(self.engine) as conn:
            intent = load_exit_intent(conn, intent_id)
            if intent.status != ExitIntentStatus.APPROVED:
                return intent.status  # another dispatcher settled it
            moved = move_exit_intent(
                conn, intent, target, self.clock, failure_reason=None if at_broker else refused
            )
            return target if moved else load_exit_intent(conn, intent_id).status


def _child_orders(intent: ExitIntentRecord, symbol: str) -> list[NewOrder]:
    return [
        NewOrder(
            purpose=OrderPurpose.EXIT,
            trade_id=intent.trade_id,
            user_broker_id=intent.user_broker_id,
            symbol=symbol,
            side=intent.side,
            quantity=quantity,
            order_type=intent.order_type,
            limit_price=intent.limit_price,
            slice_no=slice_no,
            exit_intent_id=intent.id,
        )
        for slice_no, quantity in enumerate(intent.slices, start=1)
    ]
