"""SignalService: the single writer of ``signals`` and ``signal_deliveries``.

``publish`` does, in ONE transaction (the caller's if given): quantize the
levels to the instrument's tick, derive the Asia/Kolkata trading day, insert
the signal (``ON CONFLICT DO NOTHING`` on its key, so a duplicate, even a
concurrent one, writes and emits nothing), fan out one delivery per subscribed
user-broker in one multi-row insert, move DETECTED -> PUBLISHED, and emit
SIGNAL_PUBLISHED plus one SIGNAL_DELIVERY_CREATED per delivery.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, Engine, String, func, literal, select, update
from sqlalchemy.dialects import postgresql

from signal_mgmt.entry.candidate import SignalCandidate
from signal_mgmt.entry.events import (
    SignalDeliveryCreated,
    SignalPublished,
    delivery_created,
    signal_published,
)
from signal_mgmt.errors import IllegalTransitionError, InvalidInputError
from signal_mgmt.market.calendar import MarketCalendar
from signal_mgmt.market.clock import Clock
from signal_mgmt.models import Signal, SignalDelivery, SignalStatus, UTCDateTime
from signal_mgmt.outbox.emit import emit
from signal_mgmt.outbox.events import Event
from signal_mgmt.reference.port import ReferenceData
from signal_mgmt.reference.tables import TableReferenceData
from signal_mgmt.storage.db import Executor, is_postgres, transaction
from signal_mgmt.storage.idempotent import insert_ignore
from signal_mgmt.storage.locks import lock_symbol
from signal_mgmt.validation import require_count

SIGNAL_KEY = [
    "symbol",
    "direction",
    "confluence_type",
    "signal_day",
    "effective_floor",
    "effective_ceiling",
]


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
            inserted = conn.execute(
                insert_ignore(conn, Signal, SIGNAL_KEY).returning(Signal.id), [row]
            ).first()
            if inserted is None:
                existing = conn.execute(
                    select(Signal.id).where(*(Signal.__table__.c[k] == row[k] for k in SIGNAL_KEY))
                ).scalar_one()
                return PublishResult(existing, False, self._delivery_ids(conn, existing))
            return self._fan_out(conn, int(inserted[0]), row, fresh=True)

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
                    self._fan_out(conn, signal_id, dict(signal._mapping), fresh=False)
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
            "status": SignalStatus.DETECTED,
            "detected_at": candidate.detected_at,
            "metadata": candidate.metadata,
            "created_at": now,
        }

    def _fan_out(
        self, conn: Connection, signal_id: int, signal: Mapping[str, Any], *, fresh: bool
    ) -> PublishResult:
        """DETECTED -> PUBLISHED with one delivery per subscriber, all in ``conn``'s transaction.

        ``fresh``: the signal was inserted by this transaction, so it has no delivery yet.
        """
        now = self._clock.now()
        symbol = signal["symbol"]
        audience = self._reference.audience(conn, symbol, signal["confluence_type"])
        new = _insert_deliveries(conn, signal_id, symbol, audience, now) if audience else []
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
        delivery_ids = (
            tuple(sorted(delivery for delivery, _ in new))
            if fresh
            else self._delivery_ids(conn, signal_id)
        )
        published = SignalPublished(
            signal_id=signal_id,
            symbol=symbol,
            direction=signal["direction"],
            confluence_type=signal["confluence_type"],
            signal_day=signal["signal_day"],
            effective_floor=signal["effective_floor"],
            effective_ceiling=signal["effective_ceiling"],
            detected_at=signal["detected_at"],
            delivery_count=len(delivery_ids),
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
        events: list[Event[Any]] = [signal_published(published), *deliveries]
        emit(conn, events, self._clock)
        return PublishResult(signal_id, True, delivery_ids)

    @staticmethod
    def _delivery_ids(conn: Connection, signal_id: int) -> tuple[int, ...]:
        query = (
            select(SignalDelivery.id)
            .where(SignalDelivery.signal_id == signal_id)
            .order_by(SignalDelivery.id)
        )
        return tuple(conn.execute(query).scalars())


def _insert_deliveries(
    conn: Connection, signal_id: int, symbol: str, audience: list[int], now: datetime
) -> list[tuple[int, int]]:
    """One statement for the whole audience; returns (delivery id, user-broker id) of new rows.

    On PostgreSQL the audience travels as ONE array parameter (``unnest``): the
    statement text stays short and cached, where a multi-row VALUES of thousands
    of rows is re-parsed by the driver on every call. SQLite gets executemany.
    """
    key = ["signal_id", "user_broker_id"]
    if is_postgres(conn):
        rows = select(
            literal(signal_id, BigInteger()),
            func.unnest(literal(audience, postgresql.ARRAY(BigInteger()))),
            literal(symbol, String()),
            literal(now, UTCDateTime()),
        )
        statement = postgresql.insert(SignalDelivery).from_select(
            ["signal_id", "user_broker_id", "symbol", "created_at"], rows
        )
        statement = statement.on_conflict_do_nothing(index_elements=key)
        params: list[dict[str, Any]] | None = None
    else:
        statement = insert_ignore(conn, SignalDelivery, key)
        params = [
            {"signal_id": signal_id, "user_broker_id": user, "symbol": symbol, "created_at": now}
            for user in audience
        ]
    returning = statement.returning(SignalDelivery.id, SignalDelivery.user_broker_id)
    return [(int(r[0]), int(r[1])) for r in conn.execute(returning, params)]
