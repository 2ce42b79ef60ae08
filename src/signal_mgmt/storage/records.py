"""Frozen records of table rows, mapped once at the storage boundary.

A stage reads a row through the mapped table (``select(Table.__table__)``,
``insert(Table).returning(*Table.__table__.c)``) and passes ``XRecord.from_row(row)``
on: typed fields instead of ``Row[Any]``. Vocabulary columns already come back as
their enum members (``models.vocabulary``); JSON lists become tuples.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, Self

from sqlalchemy import Row

from signal_mgmt.models import (
    Direction,
    ExitIntentStatus,
    ExitReason,
    ExitSignalStatus,
    IntentDecision,
    OrderSide,
    OrderType,
    TradeIntentStatus,
    TradeStatus,
)


class RowRecord:
    """A frozen dataclass filled, field by field, from the same-named columns of a row."""

    __slots__ = ()

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        mapping = row._mapping
        values = {
            field.name: _immutable(mapping[field.name])
            for field in fields(cls)  # type: ignore[arg-type]  # every subclass is a dataclass
        }
        return cls(**values)


def _immutable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True, slots=True)
class TradeIntentRecord(RowRecord):
    """One row of ``trade_intents``."""

    id: int
    delivery_id: int
    signal_id: int
    user_broker_id: int
    symbol: str
    direction: Direction
    decision: IntentDecision
    status: TradeIntentStatus
    reason_codes: tuple[str, ...]
    quantity: int
    entry_price: Decimal | None
    target_price: Decimal | None
    stop_price: Decimal | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TradeRecord(RowRecord):
    """One row of ``trades``."""

    id: int
    trade_intent_id: int
    user_broker_id: int
    symbol: str
    direction: Direction
    quantity: int
    entry_price: Decimal | None
    target_price: Decimal
    stop_price: Decimal
    status: TradeStatus
    created_at: datetime
    opened_at: datetime | None
    closed_at: datetime | None
    exit_price: Decimal | None
    pnl: Decimal | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ExitSignalRecord(RowRecord):
    """One row of ``exit_signals``."""

    id: int
    trade_id: int
    exit_reason: ExitReason
    episode_id: int
    status: ExitSignalStatus
    price: Decimal
    trigger_level: Decimal | None
    detected_at: datetime
    published_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ExitIntentRecord(RowRecord):
    """One row of ``exit_intents``."""

    id: int
    exit_signal_id: int
    trade_id: int
    user_broker_id: int
    exit_reason: ExitReason
    episode_id: int
    status: ExitIntentStatus
    reason_codes: tuple[str, ...]
    side: OrderSide
    quantity: int
    order_type: OrderType
    limit_price: Decimal | None
    slices: tuple[int, ...]
    filled_quantity: int
    average_fill_price: Decimal | None
    failure_reason: str | None
    claimed_until: datetime | None
    preempted_at: datetime | None
    created_at: datetime
    decided_at: datetime | None
    placed_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
