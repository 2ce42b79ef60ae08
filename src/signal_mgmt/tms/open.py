"""TMS: open a trade from an APPROVED trade intent, through its entry order(s).

``TradeOpener.open(intent_id)`` runs three steps; each is safe to repeat, so
the same call is also the reconcile and the replay:

1. prepare (one transaction): the trade in PENDING_ENTRY (UNIQUE per intent) and
   its entry order(s), sliced at the instrument's freeze quantity, with client
   order ids derived from the intent;
2. send every order not final yet via ``place_with_reconcile`` (no transaction
   is held across a broker call);
3. settle (one transaction), from what the orders say:
   - something still open at the broker (UNKNOWN, ACCEPTED, partially filled):
     intent APPROVED -> PLACED, trade stays PENDING_ENTRY;
   - all final with a fill: trade -> OPEN at the volume-weighted fill price
     with target and stop moved with the fill (same distances, on the tick),
     intent -> FILLED; a slice that never went out is cancelled;
   - nothing filled and nothing live: trade -> ENTRY_FAILED, intent -> FAILED.

No entry order is sent at or after the entry cut-off of the intent's trading day
(``entry_cutoff``, default the square-off): from then on ``open`` sends nothing,
withdraws the slices the broker never got and cancels the rest at the broker
(``BrokerGateway.cancel``), so a partly filled entry opens for what filled and
the exit side protects and squares it off, and an unfilled one fails with
``ENTRY_CUTOFF``.

Because step 2 talks to the broker between transactions, ``open`` cannot run
inside a caller's transaction and takes no ``connection``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from signal_mgmt.errors import IllegalTransitionError, IntegrityViolation, NotFoundError
from signal_mgmt.execution.broker import BrokerGateway
from signal_mgmt.execution.orders import (
    NewOrder,
    OrderRecord,
    cancel_order,
    place_with_reconcile,
    record_orders,
    withdraw_order,
)
from signal_mgmt.market.calendar import INTRADAY_SQUARE_OFF, MarketCalendar, nse_calendar
from signal_mgmt.market.clock import Clock
from signal_mgmt.models import (
    MONEY_STEP,
    Direction,
    Order,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    Trade,
    TradeIntent,
    TradeIntentStatus,
    TradeStatus,
    plain_decimal,
)
from signal_mgmt.outbox.emit import emit
from signal_mgmt.outbox.events import Event
from signal_mgmt.qualification.levels import Levels
from signal_mgmt.qualification.reasons import EntryReason
from signal_mgmt.qualification.sizing import slice_quantity
from signal_mgmt.reference.port import ReferenceData
from signal_mgmt.reference.tables import TableReferenceData
from signal_mgmt.storage.db import transaction
from signal_mgmt.storage.idempotent import insert_ignore
from signal_mgmt.storage.records import TradeIntentRecord, TradeRecord
from signal_mgmt.storage.state import transition
from signal_mgmt.tms.events import (
    TRADE_ENTRY_FAILED,
    TRADE_INTENT_FAILED,
    TRADE_INTENT_FILLED,
    TRADE_INTENT_PLACED,
    TRADE_OPENED,
    TradeEntryFailed,
    TradeIntentExecuted,
    TradeOpened,
    intent_event,
    trade_event,
)
from signal_mgmt.validation import require_count, require_id

ENTRY_EXPIRED = "ENTRY_EXPIRED"
"""Failure reason of an entry that had not filled within its ``entry_ttl``."""

_LIVE_AT_BROKER = frozenset(
    {OrderStatus.UNKNOWN, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED}
)


@dataclass(frozen=True, slots=True)
class OpenResult:
    trade_intent_id: int
    trade_id: int | None
    intent_status: TradeIntentStatus
    trade_status: TradeStatus | None


class TradeOpener:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        broker: BrokerGateway,
        reference: ReferenceData | None = None,
        *,
        calendar: MarketCalendar | None = None,
        entry_cutoff: clock_time | None = INTRADAY_SQUARE_OFF,
        entry_ttl: timedelta | None = None,
        max_attempts: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``entry_cutoff``: exchange-local time from which no entry order is sent for an
        intent approved that trading day (``ExitSettings.entry_cutoff_time``; None: none).
        ``entry_ttl``: how long after its approval an entry may still be sent or rest at
        the broker (``ExitSettings.entry_ttl``; None: until the cut-off)."""
        self._engine = engine
        self._clock = clock
        self._broker = broker
        self._reference: ReferenceData = reference or TableReferenceData()
        self._calendar = calendar if calendar is not None else nse_calendar()
        self._entry_cutoff = entry_cutoff
        self._entry_ttl = entry_ttl
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._sleep = sleep

    def open(self, trade_intent_id: int) -> OpenResult:
        require_id(trade_intent_id, "trade_intent_id")
        pending, approved_at = self._prepare(trade_intent_id)
        late = self._late(approved_at) if pending else None
        for order in pending:
            if late is not None:
                self._stop(order, late)
            else:
                place_with_reconcile(
                    self._engine,
                    self._broker,
                    order.client_order_id,
                    self._clock,
                    max_attempts=self._max_attempts,
                    backoff=self._backoff,
                    sleep=self._sleep,
                )
        return self._settle(trade_intent_id, late)

    def open_pending(self, limit: int = 500) -> list[OpenResult]:
        """Replay: APPROVED intents (with or without orders) and PLACED ones to reconcile."""
        require_count(limit, "limit")
        live = (TradeIntentStatus.APPROVED, TradeIntentStatus.PLACED)
        with transaction(self._engine) as conn:
            ids = list(
                conn.execute(
                    select(TradeIntent.id)
                    .where(TradeIntent.status.in_(live))
                    .order_by(TradeIntent.id)
                    .limit(limit)
                ).scalars()
            )
        return [self.open(intent_id) for intent_id in ids]

    def _late(self, approved_at: datetime) -> str | None:
        """Why no entry order may leave now (cut-off of the approval's trading day, or
        the entry TTL), or None."""
        now = self._clock.now()
        if self._entry_cutoff is not None:
            session = self._calendar.session(self._calendar.trading_date(approved_at))
            if session is None:  # approved on a closed day: its entry can only be late
                return EntryReason.ENTRY_CUTOFF
            if now >= session.daily_time(self._entry_cutoff, self._calendar.timezone):
                return EntryReason.ENTRY_CUTOFF
        if self._entry_ttl is not None and now - approved_at >= self._entry_ttl:
            return ENTRY_EXPIRED
        return None

    def _stop(self, order: OrderRecord, reason: str) -> None:
        """Too late to enter: an order the broker never got is withdrawn, one it has is
        cancelled (what filled stays filled); a broker that cannot answer is asked again
        on the next call."""
        cid = order.client_order_id
        if order.status in {OrderStatus.NEW, OrderStatus.UNKNOWN}:
            order = withdraw_order(self._engine, self._broker, cid, self._clock, reason)
        cancel_order(self._engine, self._broker, order, self._clock)

    # ------------------------------------------------------------------ step 1

    def _prepare(self, trade_intent_id: int) -> tuple[list[OrderRecord], datetime]:
        with transaction(self._engine) as conn:
            intent = _load_intent(conn, trade_intent_id, lock=True)
            status = intent.status
            if status is TradeIntentStatus.REJECTED:
                raise IllegalTransitionError(
                    "trade_intents",
                    trade_intent_id,
                    expected="APPROVED",
                    target="PLACED",
                    actual=intent.status,
                )
            if status not in {TradeIntentStatus.APPROVED, TradeIntentStatus.PLACED}:
                return [], intent.created_at
            trade_id = self._ensure_trade(conn, intent)
            orders = record_orders(conn, self._entry_orders(conn, intent, trade_id), self._clock)
            return [order for order in orders if not order.is_final], intent.created_at

    def _ensure_trade(self, conn: Connection, intent: TradeIntentRecord) -> int:
        now = self._clock.now()
        row = {
            "trade_intent_id": intent.id,
            "user_broker_id": intent.user_broker_id,
            "symbol": intent.symbol,
            "direction": intent.direction,
            "quantity": intent.quantity,
            "target_price": intent.target_price,
            "stop_price": intent.stop_price,
            "status": TradeStatus.PENDING_ENTRY,
            "created_at": now,
            "updated_at": now,
        }
        conn.execute(insert_ignore(conn, Trade, ["trade_intent_id"]), [row])
        found = conn.execute(select(Trade.id).where(Trade.trade_intent_id == intent.id))
        return int(found.scalar_one())

    def _entry_orders(
        self, conn: Connection, intent: TradeIntentRecord, trade_id: int
    ) -> list[NewOrder]:
        instrument = self._reference.instrument(conn, intent.symbol)
        if instrument is None:
            raise NotFoundError("instrument", intent.symbol)
        side = OrderSide.BUY if intent.direction == Direction.LONG else OrderSide.SELL
        slices = slice_quantity(intent.quantity, instrument.freeze_quantity, instrument.lot_size)
        return [
            NewOrder(
                purpose=OrderPurpose.ENTRY,
                trade_id=trade_id,
                user_broker_id=intent.user_broker_id,
                symbol=intent.symbol,
                side=side,
                quantity=quantity,
                slice_no=number,
                trade_intent_id=intent.id,
            )
            for number, quantity in enumerate(slices, start=1)
        ]

    # ------------------------------------------------------------------ step 3

    def _settle(self, trade_intent_id: int, late: str | None) -> OpenResult:
        with transaction(self._engine) as conn:
            intent = _load_intent(conn, trade_intent_id, lock=True)
            trade = _load_trade(conn, trade_intent_id)
            status = intent.status
            if trade is None or status not in {
                TradeIntentStatus.APPROVED,
                TradeIntentStatus.PLACED,
            }:
                return _result(conn, trade_intent_id)
            orders = [
                OrderRecord.from_row(row)
                for row in conn.execute(
                    select(Order.__table__)
                    .where(Order.trade_intent_id == trade_intent_id)
                    .order_by(Order.slice_no)
                )
            ]
            events: list[Event[Any]] = []
            if any(order.status in _LIVE_AT_BROKER for order in orders):
                self._mark_placed(conn, intent, trade.id, status, events)
            elif any(order.filled_quantity > 0 for order in orders):
                self._cancel_unsent(conn, orders)
                self._mark_placed(conn, intent, trade.id, status, events)
                self._fill(conn, intent, trade, orders, events)
            else:
                self._cancel_unsent(conn, orders)
                self._fail(conn, intent, trade.id, orders, events, late=late)
            emit(conn, events, self._clock)
            return _result(conn, trade_intent_id)

    def _mark_placed(
        self,
        conn: Connection,
        intent: TradeIntentRecord,
        trade_id: int,
        status: TradeIntentStatus,
        events: list[Event[Any]],
    ) -> None:
        if status is not TradeIntentStatus.APPROVED:
            return
        transition(
            conn,
            TradeIntent,
            intent.id,
            expected={TradeIntentStatus.APPROVED},
            target=TradeIntentStatus.PLACED,
            values={"updated_at": self._clock.now()},
        )
        payload = TradeIntentExecuted(
            trade_intent_id=intent.id,
            trade_id=trade_id,
            symbol=intent.symbol,
            status=TradeIntentStatus.PLACED,
            filled_quantity=0,
            average_price=None,
        )
        events.append(intent_event(TRADE_INTENT_PLACED, payload))

    def _fill(
        self,
        conn: Connection,
        intent: TradeIntentRecord,
        trade: TradeRecord,
        orders: list[OrderRecord],
        events: list[Event[Any]],
    ) -> None:
        now = self._clock.now()
        filled = sum(order.filled_quantity for order in orders)
        notional = sum(
            ((order.average_price or Decimal(0)) * order.filled_quantity for order in orders),
            Decimal(0),
        )
        instrument = self._reference.instrument(conn, intent.symbol)
        if instrument is None:
            raise NotFoundError("instrument", intent.symbol)
        average = notional / filled
        on_tick = instrument.to_tick(average)
        # On the tick when it is one (a single fill), else to the column's precision; plain.
        average = plain_decimal(on_tick if on_tick == average else average.quantize(MONEY_STEP))
        planned = _planned_levels(intent)
        levels = planned.shifted_to(average, instrument.tick_size)
        transition(
            conn,
            Trade,
            trade.id,
            expected={TradeStatus.PENDING_ENTRY},
            target=TradeStatus.OPEN,
            values={
                "quantity": filled,
                "entry_price": average,
                "target_price": levels.target,
                "stop_price": levels.stop,
                "opened_at": now,
                "updated_at": now,
            },
        )
        transition(
            conn,
            TradeIntent,
            intent.id,
            expected={TradeIntentStatus.PLACED},
            target=TradeIntentStatus.FILLED,
            values={"updated_at": now},
        )
        executed = TradeIntentExecuted(
            trade_intent_id=intent.id,
            trade_id=trade.id,
            symbol=intent.symbol,
            status=TradeIntentStatus.FILLED,
            filled_quantity=filled,
            average_price=average,
        )
        opened = TradeOpened(
            trade_id=trade.id,
            trade_intent_id=intent.id,
            user_broker_id=intent.user_broker_id,
            symbol=intent.symbol,
            direction=intent.direction,
            quantity=filled,
            entry_price=average,
            target_price=levels.target,
            stop_price=levels.stop,
            opened_at=now,
        )
        events.append(intent_event(TRADE_INTENT_FILLED, executed))
        events.append(trade_event(TRADE_OPENED, trade.id, opened))

    def _fail(
        self,
        conn: Connection,
        intent: TradeIntentRecord,
        trade_id: int,
        orders: list[OrderRecord],
        events: list[Event[Any]],
        *,
        late: str | None,
    ) -> None:
        now = self._clock.now()
        reason = late or next((o.last_error for o in orders if o.last_error), "ENTRY_NOT_FILLED")
        transition(
            conn,
            Trade,
            trade_id,
            expected={TradeStatus.PENDING_ENTRY},
            target=TradeStatus.ENTRY_FAILED,
            values={"updated_at": now},
        )
        transition(
            conn,
            TradeIntent,
            intent.id,
            expected={TradeIntentStatus.APPROVED, TradeIntentStatus.PLACED},
            target=TradeIntentStatus.FAILED,
            values={"updated_at": now},
        )
        executed = TradeIntentExecuted(
            trade_intent_id=intent.id,
            trade_id=trade_id,
            symbol=intent.symbol,
            status=TradeIntentStatus.FAILED,
            filled_quantity=0,
            average_price=None,
            failure_reason=reason,
        )
        failed = TradeEntryFailed(
            trade_id=trade_id, trade_intent_id=intent.id, symbol=intent.symbol, reason=reason
        )
        events.append(intent_event(TRADE_INTENT_FAILED, executed))
        events.append(trade_event(TRADE_ENTRY_FAILED, trade_id, failed))

    def _cancel_unsent(self, conn: Connection, orders: list[OrderRecord]) -> None:
        """Slices still NEW after every attempt never reached the broker: close them."""
        unsent = [order.id for order in orders if order.status is OrderStatus.NEW]
        if unsent:
            conn.execute(
                update(Order)
                .where(Order.id.in_(unsent), Order.status == OrderStatus.NEW)
                .values(status=OrderStatus.CANCELLED, updated_at=self._clock.now())
            )


def _load_intent(conn: Connection, trade_intent_id: int, *, lock: bool) -> TradeIntentRecord:
    query = select(TradeIntent.__table__).where(TradeIntent.id == trade_intent_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFoundError("trade_intent", trade_intent_id)
    return TradeIntentRecord.from_row(row)


def _load_trade(conn: Connection, trade_intent_id: int) -> TradeRecord | None:
    query = select(Trade.__table__).where(Trade.trade_intent_id == trade_intent_id)
    row = conn.execute(query).first()
    return None if row is None else TradeRecord.from_row(row)


def _planned_levels(intent: TradeIntentRecord) -> Levels:
    entry, target, stop = intent.entry_price, intent.target_price, intent.stop_price
    if entry is None or target is None or stop is None:  # only a REJECTED intent has none
        raise IntegrityViolation(f"trade_intent {intent.id} has no levels")
    return Levels(entry, target, stop)


def _result(conn: Connection, trade_intent_id: int) -> OpenResult:
    row = conn.execute(
        select(TradeIntent.status, Trade.id, Trade.status.label("trade_status"))
        .join(Trade, Trade.trade_intent_id == TradeIntent.id, isouter=True)
        .where(TradeIntent.id == trade_intent_id)
    ).one()
    trade_status = TradeStatus(row.trade_status) if row.trade_status else None
    return OpenResult(trade_intent_id, row.id, TradeIntentStatus(row.status), trade_status)
