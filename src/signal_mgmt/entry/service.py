"""SignalService: the single writer of ``signals`` and ``signal_deliveries``.

``publish`` does, in ONE transaction (the caller's if given): quantize the
levels to the instrument's tick, derive the Asia/Kolkata trading day, insert
the signal as PUBLISHED (``ON CONFLICT DO NOTHING`` on its key, so a duplicate,
even a concurrent one, writes and emits nothing), fan out one delivery per
subscribed user-broker, and emit SIGNAL_PUBLISHED plus one
SIGNAL_DELIVERY_CREATED per delivery. On PostgreSQL with the default reference
data the insert, the audience read and the deliveries are one statement.

A new signal is written PUBLISHED at once: DETECTED -> PUBLISHED as a second
UPDATE would guard a row that no other transaction can see yet. DETECTED is
left to signals written without a fan-out (``finish_detected`` replays them,
through the guarded UPDATE).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from signal_mgmt.entry.candidate import SignalCandidate
from signal_mgmt.entry.events import (
    SignalDeliveryCreated,
    SignalPublished,
    delivery_created,
    signal_published,
)
from signal_mgmt.entry.fan_out import (
    SIGNAL_KEY,
    NewDeliveries,
    insert_deliveries,
    publish_in_one_statement,
)
from signal_mgmt.errors import IllegalTransitionError, InvalidInputError
from signal_mgmt.market.calendar import MarketCalendar
from signal_mgmt.market.clock import Clock
from signal_mgmt.models import Signal, SignalDelivery, SignalStatus
from signal_mgmt.outbox.emit import emit
from signal_mgmt.outbox.events import Event
from signal_mgmt.reference.port import ReferenceData
from signal_mgmt.reference.tables import TableReferenceData
from signal_mgmt.storage.db import Executor, is_postgres, transaction
from signal_mgmt.storage.idempotent import insert_ignore
from signal_mgmt.storage.locks import lock_symbol
from signal_mgmt.validation import require_count


@dataclass(frozen=True, slots=True)
class PublishResult:
    """``created`` is False for a duplicate; ``delivery_ids`` are the signal's deliveries."""

    signal_id: int
    created: bool
    delivery_ids: tuple[int, ...]


class SignalService:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        calendar: MarketCalendar,
        reference: ReferenceData | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._calendar = calendar
        self._reference: ReferenceData = reference or TableReferenceData()

    def publish(
        self, candidate: SignalCandidate, connection: Executor | None = None
    ) -> PublishResult:
        if not isinstance(candidate, SignalCandidate):
            raise InvalidInputError("publish takes a SignalCandidate", field="candidate")
        with transaction(self._engine, connection) as conn:
            lock_symbol(conn, candidate.symbol)
            row = self._key_row(conn, candidate)
            created = self._insert_published(conn, row)
            if created is None:
                existing = conn.execute(
                    select(Signal.id).where(*(Signal.__table__.c[k] == row[k] for k in SIGNAL_KEY))
                ).scalar_one()
                return PublishResult(existing, False, self._delivery_ids(conn, existing))
            signal_id, new = created
            emit(conn, _events(signal_id, row, new, len(new)), self._clock)
            return PublishResult(signal_id, True, tuple(sorted(d for d, _ in new)))

    def _insert_published(
        self, conn: Connection, row: Mapping[str, Any]
    ) -> tuple[int, NewDeliveries] | None:
        """The new signal and its deliveries; None for a duplicate (nothing written)."""
        if is_postgres(conn) and type(self._reference) is TableReferenceData:
            return publish_in_one_statement(conn, row)
        inserted = conn.execute(
            insert_ignore(conn, Signal, SIGNAL_KEY).returning(Signal.id), [row]
        ).first()
        if inserted is None:
            return None
        signal_id = int(inserted[0])
        symbol = row["symbol"]
        audience = self._reference.audience(conn, symbol, row["confluence_type"])
        now = row["created_at"]
        new = insert_deliveries(conn, signal_id, symbol, audience, now) if audience else []
        return signal_id, new

    def finish_detected(self, connection: Executor | None = None, limit: int = 100) -> list[int]:
        """Replay: fan out and publish signals left in DETECTED; returns their ids."""
        require_count(limit, "limit")
        with transaction(self._engine, connection) as conn:
            ids = list(
                conn.execute(
                    select(Signal.id)
                    .where(Signal.status == SignalStatus.DETECTED)
                    .order_by(Signal.id)
                    .limit(limit)
                ).scalars()
            )
        finished = []
        for signal_id in ids:
            with transaction(self._engine, connection) as conn:
                symbol = conn.execute(select(Signal.symbol).where(Signal.id == signal_id))
                lock_symbol(conn, symbol.scalar_one())
                signal = conn.execute(select(Signal.__table__).where(Signal.id == signal_id)).one()
                if signal.status == SignalStatus.DETECTED:
                    self._fan_out(conn, signal_id, dict(signal._mapping))
                    finished.append(signal_id)
        return finished

    def _key_row(self, conn: Connection, candidate: SignalCandidate) -> dict[str, Any]:
        instrument = self._reference.instrument(conn, candidate.symbol)
        if instrument is None:
            raise InvalidInputError(
                f"unknown symbol {candidate.symbol!r}", field="symbol", value=candidate.symbol
            )
        floor = instrument.to_tick(candidate.effective_floor)
        ceiling = instrument.to_tick(candidate.effective_ceiling)
        if floor <= 0:
            raise InvalidInputError(
                "effective_floor rounds to zero on the tick", field="effective_floor"
            )
        now = self._clock.now()
        return {
            "symbol": candidate.symbol,
            "direction": candidate.direction,
            "confluence_type": candidate.confluence_type,
            "signal_day": self._calendar.trading_date(candidate.detected_at),
            "effective_floor": floor,
            "effective_ceiling": ceiling,
            "status": SignalStatus.PUBLISHED,
            "detected_at": candidate.detected_at,
            "published_at": now,
            "metadata": candidate.metadata,
            "created_at": now,
        }

    def _fan_out(self, conn: Connection, signal_id: int, signal: Mapping[str, Any]) -> None:
        """Replay of a DETECTED signal: its deliveries, DETECTED -> PUBLISHED, its events."""
        now = self._clock.now()
        symbol = signal["symbol"]
        audience = self._reference.audience(conn, symbol, signal["confluence_type"])
        new = insert_deliveries(conn, signal_id, symbol, audience, now) if audience else []
        moved = conn.execute(
            update(Signal)
            .where(Signal.id == signal_id, Signal.status == SignalStatus.DETECTED)
            .values(status=SignalStatus.PUBLISHED, published_at=now)
        ).rowcount
        if moved != 1:
            raise IllegalTransitionError(
                "signal",
                signal_id,
                expected=SignalStatus.DETECTED,
                target=SignalStatus.PUBLISHED,
                actual=signal["status"],
            )
        delivery_count = len(self._delivery_ids(conn, signal_id))
        emit(conn, _events(signal_id, signal, new, delivery_count), self._clock)

    @staticmethod
    def _delivery_ids(conn: Connection, signal_id: int) -> tuple[int, ...]:
        query = (
            select(SignalDelivery.id)
            .where(SignalDelivery.signal_id == signal_id)
            .order_by(SignalDelivery.id)
        )
        return tuple(conn.execute(query).scalars())


def _events(
    signal_id: int, signal: Mapping[str, Any], new: NewDeliveries, delivery_count: int
) -> list[Event[Any]]:
    """SIGNAL_PUBLISHED, then SIGNAL_DELIVERY_CREATED per new delivery in id order."""
    symbol = signal["symbol"]
    published = SignalPublished(
        signal_id=signal_id,
        symbol=symbol,
        direction=signal["direction"],
        confluence_type=signal["confluence_type"],
        signal_day=signal["signal_day"],
        effective_floor=signal["effective_floor"],
        effective_ceiling=signal["effective_ceiling"],
        detected_at=signal["detected_at"],
        delivery_count=delivery_count,
    )
    deliveries = [
        delivery_created(
            SignalDeliveryCreated(
                delivery_id=delivery_id,
                signal_id=signal_id,
                user_broker_id=user_broker_id,
                symbol=symbol,
            )
        )
        for delivery_id, user_broker_id in sorted(new)
    ]
    return [signal_published(published), *deliveries]
