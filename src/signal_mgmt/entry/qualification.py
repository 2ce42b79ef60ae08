"""EntryQualificationService (the spec's ValidationService): deliveries -> trade_intents.

Each delivery is consumed exactly once: the intent's UNIQUE (delivery_id) key
and a guarded ``consumed_at IS NULL`` update settle races; the intent and its
TRADE_INTENT_APPROVED / TRADE_INTENT_REJECTED event commit together. Facts are
read inside the same transaction, under the symbol's advisory lock and the
user-broker's row lock (PostgreSQL), so two qualifications for one account
(e.g. two symbols in two processes) never both take the last free slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from signal_mgmt.entry.intent_events import TradeIntentDecided, intent_decided
from signal_mgmt.errors import NotFoundError
from signal_mgmt.market.calendar import INTRADAY_SQUARE_OFF, MarketCalendar
from signal_mgmt.market.clock import Clock
from signal_mgmt.models import (
    Direction,
    IntentDecision,
    Signal,
    SignalDelivery,
    TradeIntent,
    TradeIntentStatus,
    UserBroker,
)
from signal_mgmt.outbox.emit import emit
from signal_mgmt.qualification.entry_rules import (
    DEFAULT_ENTRY_RULES,
    EntryDecision,
    EntryFacts,
    EntryRule,
    qualify_entry,
)
from signal_mgmt.reference.port import ReferenceData
from signal_mgmt.reference.tables import TableReferenceData
from signal_mgmt.storage.db import Executor, transaction
from signal_mgmt.storage.idempotent import insert_ignore
from signal_mgmt.storage.locks import lock_symbol
from signal_mgmt.storage.records import RowRecord
from signal_mgmt.validation import require_count, require_id


@dataclass(frozen=True, slots=True)
class _Delivery(RowRecord):
    """A signal delivery with the facts of its signal that qualification reads."""

    id: int
    signal_id: int
    user_broker_id: int
    symbol: str
    direction: Direction
    detected_at: datetime
    effective_floor: Decimal
    effective_ceiling: Decimal


@dataclass(frozen=True, slots=True)
class IntentResult:
    """``created`` is False when the delivery had already been consumed."""

    trade_intent_id: int
    created: bool
    status: TradeIntentStatus
    quantity: int
    reason_codes: tuple[str, ...]


class EntryQualificationService:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        calendar: MarketCalendar,
        reference: ReferenceData | None = None,
        *,
        rules: tuple[EntryRule, ...] = DEFAULT_ENTRY_RULES,
        max_signal_age: timedelta = timedelta(minutes=5),
        entry_cutoff: time | None = INTRADAY_SQUARE_OFF,
    ) -> None:
        """``entry_cutoff``: exchange-local time from which no new intraday entry is taken
        (``ExitSettings.entry_cutoff_time``; None: no cut-off)."""
        self._engine = engine
        self._clock = clock
        self._calendar = calendar
        self._reference: ReferenceData = reference or TableReferenceData()
        self._rules = rules
        self._max_signal_age = max_signal_age
        self._entry_cutoff = entry_cutoff

    def qualify(self, delivery_id: int, connection: Executor | None = None) -> IntentResult:
        """Consume one delivery into one trade intent (or return the one it already made)."""
        require_id(delivery_id, "delivery_id")
        with transaction(self._engine, connection) as conn:
            delivery = self._delivery(conn, delivery_id)
            lock_symbol(conn, delivery.symbol)
            existing = self._intent_for(conn, delivery_id)
            if existing is not None:
                return existing
            # The account row lock serializes every entry decision of one user-broker.
            conn.execute(
                select(UserBroker.id)
                .where(UserBroker.id == delivery.user_broker_id)
                .with_for_update()
            )
            decision = qualify_entry(self._facts(conn, delivery), self._rules)
            return self._record(conn, delivery, decision)

    def qualify_pending(self, limit: int = 500) -> list[IntentResult]:
        """Replay: consume unconsumed deliveries, oldest first, one transaction each."""
        require_count(limit, "limit")
        with transaction(self._engine) as conn:
            ids = list(
                conn.execute(
                    select(SignalDelivery.id)
                    .where(SignalDelivery.consumed_at.is_(None))
                    .order_by(SignalDelivery.id)
                    .limit(limit)
                ).scalars()
            )
        return [self.qualify(delivery_id) for delivery_id in ids]

    def _delivery(self, conn: Connection, delivery_id: int) -> _Delivery:
        row = conn.execute(
            select(
                SignalDelivery.id,
                SignalDelivery.signal_id,
                SignalDelivery.user_broker_id,
                SignalDelivery.symbol,
                Signal.direction,
                Signal.detected_at,
                Signal.effective_floor,
                Signal.effective_ceiling,
            )
            .join(Signal, Signal.id == SignalDelivery.signal_id)
            .where(SignalDelivery.id == delivery_id)
        ).first()
        if row is None:
            raise NotFoundError("signal_delivery", delivery_id)
        return _Delivery.from_row(row)

    def _facts(self, conn: Connection, delivery: _Delivery) -> EntryFacts:
        instrument = self._reference.instrument(conn, delivery.symbol)
        if instrument is None:
            raise NotFoundError("instrument", delivery.symbol)
        account = self._reference.account(conn, delivery.user_broker_id)
        if account is None:
            raise NotFoundError("user_broker", delivery.user_broker_id)
        now = self._clock.now()
        session = self._calendar.session(self._calendar.trading_date(now))
        cutoff = self._entry_cutoff
        return EntryFacts(
            now=now,
            local_time=now.astimezone(self._calendar.timezone).time(),
            session=session,
            symbol=delivery.symbol,
            direction=delivery.direction,
            detected_at=delivery.detected_at,
            effective_floor=delivery.effective_floor,
            effective_ceiling=delivery.effective_ceiling,
            max_signal_age=self._max_signal_age,
            instrument=instrument,
            account=account,
            positions=tuple(self._reference.positions(conn, delivery.user_broker_id)),
            entry_cutoff_at=(
                session.daily_time(cutoff, self._calendar.timezone)
                if session is not None and cutoff is not None
                else None
            ),
        )

    def _record(
        self, conn: Connection, delivery: _Delivery, decision: EntryDecision
    ) -> IntentResult:
        now = self._clock.now()
        verdict = IntentDecision.APPROVED if decision.approved else IntentDecision.REJECTED
        levels = decision.levels
        row: dict[str, Any] = {
            "delivery_id": delivery.id,
            "signal_id": delivery.signal_id,
            "user_broker_id": delivery.user_broker_id,
            "symbol": delivery.symbol,
            "direction": delivery.direction,
            "decision": verdict,
            "status": TradeIntentStatus(verdict),
            "reason_codes": [reason.value for reason in decision.reasons],
            "quantity": decision.quantity,
            "entry_price": levels.entry if levels else None,
            "target_price": levels.target if levels else None,
            "stop_price": levels.stop if levels else None,
            "created_at": now,
            "updated_at": now,
        }
        statement = insert_ignore(conn, TradeIntent, ["delivery_id"]).returning(TradeIntent.id)
        inserted = conn.execute(statement, [row]).scalar_one_or_none()
        if inserted is None:  # a concurrent consumer won; report its intent
            existing = self._intent_for(conn, delivery.id)
            assert existing is not None
            return existing
        conn.execute(
            update(SignalDelivery)
            .where(SignalDelivery.id == delivery.id, SignalDelivery.consumed_at.is_(None))
            .values(consumed_at=now)
        )
        payload = TradeIntentDecided(
            trade_intent_id=inserted, **{k: v for k, v in row.items() if k in _PAYLOAD_FIELDS}
        )
        emit(conn, intent_decided(payload), self._clock)
        return IntentResult(
            inserted,
            True,
            TradeIntentStatus(verdict),
            decision.quantity,
            tuple(row["reason_codes"]),
        )

    @staticmethod
    def _intent_for(conn: Connection, delivery_id: int) -> IntentResult | None:
        row = conn.execute(
            select(
                TradeIntent.id, TradeIntent.status, TradeIntent.quantity, TradeIntent.reason_codes
            ).where(TradeIntent.delivery_id == delivery_id)
        ).first()
        if row is None:
            return None
        return IntentResult(
            row.id, False, TradeIntentStatus(row.status), row.quantity, tuple(row.reason_codes)
        )


_PAYLOAD_FIELDS = frozenset(TradeIntentDecided.model_fields) - {"trade_intent_id"}
