"""All tables, one metadata (SQLAlchemy 2 typed models).

Portable column types live here so that SQLite (the embedded default) and
PostgreSQL (production) store the same values: aware UTC timestamps, exact
Decimals, JSON (JSONB on PostgreSQL), UUIDs.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Time,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import Numeric, TypeEngine

from signal_mgmt.market.clock import require_aware

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on every backend.

    SQLite has no timezone type: values are stored as naive UTC and re-tagged on
    the way out. A naive value on the way in is a bug and is refused.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # The last check of every stored time, a host clock's "now" included: a naive or
        # out-of-range value is an InvalidInputError (translate_db_errors unwraps it).
        utc = require_aware(value, "a stored time").astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


MONEY_PRECISION = 20
MONEY_SCALE = 6
"""Digits and decimal places of every money column; inputs finer than this are refused."""
MONEY_STEP = Decimal(1).scaleb(-MONEY_SCALE)
"""The smallest amount a money column holds (0.000001); computed averages are quantized to it."""


class Money(TypeDecorator[Decimal]):
    """Exact decimals: NUMERIC on PostgreSQL, text on SQLite (whose NUMERIC is a float)."""

    impl = Numeric(MONEY_PRECISION, MONEY_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(40))
        return dialect.type_descriptor(Numeric(MONEY_PRECISION, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise ValueError(f"Money takes a finite Decimal, got {value!r}")
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else plain_decimal(Decimal(value))


def plain_decimal(value: Decimal) -> Decimal:
    """``value`` without trailing zeros and without an exponent: ``110``, ``94.95``.

    The one written form of a price read back from either backend (SQLite's
    ``normalize`` gave ``1.1E+2``, PostgreSQL ``110.000000``), so what reaches a
    broker or an event is the same plain string on both.
    """
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    return normal.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else normal


JSONDocument = JSON().with_variant(JSONB(), "postgresql")
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only

VocabularyT = TypeVar("VocabularyT", bound=StrEnum)


def vocabulary(enum: type[VocabularyT], length: int) -> Enum:
    """A column of one ``StrEnum``: a plain VARCHAR(``length``) holding the members' values.

    Non-native and without a CHECK constraint, so the schema is exactly the
    migrations' ``String(length)``; rows come back as enum members.
    """
    return Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda members: [member.value for member in members],
    )


def partial_index(name: str, *columns: str, where: str, unique: bool = False) -> Index:
    """An index over the rows matching the SQL condition ``where``, on PostgreSQL and SQLite."""
    return Index(
        name, *columns, unique=unique, postgresql_where=text(where), sqlite_where=text(where)
    )


# --------------------------------------------------------------------------- outbox


class OutboxStatus(StrEnum):
    PENDING = "PENDING"
    PUBLISHED = "PUBLISHED"
    DEAD = "DEAD"  # refused for good (a permanent error); blocks the later events of its key
    PARKED = "PARKED"  # set aside by an operator; the later events of its key flow on


class OutboxRow(Base):
    """One event waiting to be, or already, published.

    On PostgreSQL a relay's claim writes nothing to the row: what a relay has in
    flight is held by a session-level advisory lock on the key (outbox/claim.py),
    which the server releases when the relay's connection dies. On SQLite a
    claimed row carries the relay's ``claim_token`` and ``available_at`` is
    pushed to the end of its lease.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid(), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    aggregate_type: Mapped[str] = mapped_column(String(64))
    aggregate_id: Mapped[str] = mapped_column(String(128))
    partition_key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    headers: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    available_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(
        String(16), default=OutboxStatus.PENDING, server_default=OutboxStatus.PENDING.value
    )
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claim_token: Mapped[uuid.UUID | None] = mapped_column(Uuid())

    __table_args__ = (
        # The relay's claim reads pending rows in id order; published rows (the
        # vast majority) stay out of the index on PostgreSQL.
        partial_index(
            "ix_outbox_pending",
            "id",
            where="status = 'PENDING'",
        ),
        partial_index(
            "ix_outbox_pending_key",
            "partition_key",
            "id",
            where="status <> 'PUBLISHED'",
        ),
        # The rows that hold their key back (claim.py ``_held_back``), each found
        # by an index scan over a few rows instead of a scan of the whole backlog.
        partial_index(
            "ix_outbox_dead",
            "partition_key",
            "id",
            where="status = 'DEAD'",
        ),
        partial_index(
            "ix_outbox_pending_available",
            "available_at",
            where="status = 'PENDING'",
        ),
    )


# --------------------------------------------------------------------------- inbox (consumer side)
# (migration 0002_inbox)


class InboxRow(Base):
    """One event a consumer has handled; the primary key is what drops a re-delivery.

    Written in the consumer's transaction together with the handler's writes
    (``signal_mgmt.outbox.inbox``), so "handled" and "its effects" commit as one.
    """

    __tablename__ = "inbox"

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


# --------------------------------------------------------------------------- reference data, ENTRY
# (migration 0003_entry)

ANY = "*"
"""Subscription wildcard: ``symbol`` or ``confluence_type`` equal to ``*`` matches every value.

A sentinel rather than NULL so that the UNIQUE key of ``subscriptions`` holds
(SQL treats NULLs as distinct)."""


class Direction(StrEnum):
    LONG = "LONG"
    SHORT = "SHORT"


class SizingMode(StrEnum):
    FIXED_QUANTITY = "FIXED_QUANTITY"
    FIXED_CAPITAL = "FIXED_CAPITAL"
    RISK_PER_TRADE = "RISK_PER_TRADE"


class SignalStatus(StrEnum):
    DETECTED = "DETECTED"
    PUBLISHED = "PUBLISHED"


class IntentDecision(StrEnum):
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class TradeIntentStatus(StrEnum):
    """APPROVED | REJECTED; then APPROVED -> PLACED -> FILLED | FAILED."""

    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    PLACED = "PLACED"
    FILLED = "FILLED"
    FAILED = "FAILED"


class TradeStatus(StrEnum):
    """PENDING_ENTRY -> OPEN -> CLOSED; PENDING_ENTRY -> ENTRY_FAILED when no entry filled."""

    PENDING_ENTRY = "PENDING_ENTRY"
    OPEN = "OPEN"
    CLOSED = "CLOSED"
    ENTRY_FAILED = "ENTRY_FAILED"


class OrderPurpose(StrEnum):
    ENTRY = "ENTRY"
    EXIT = "EXIT"


class OrderSide(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"


class OrderStatus(StrEnum):
    """NEW (recorded, not yet sent) -> UNKNOWN (sent, outcome not known) | ACCEPTED |
    PARTIALLY_FILLED | FILLED | REJECTED | CANCELLED. UNKNOWN is reconciled by client id."""

    NEW = "NEW"
    UNKNOWN = "UNKNOWN"
    ACCEPTED = "ACCEPTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"


class Instrument(Base):
    __tablename__ = "instruments"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(64), unique=True)
    exchange: Mapped[str] = mapped_column(String(16))
    segment: Mapped[str] = mapped_column(String(16))
    tick_size: Mapped[Decimal] = mapped_column(Money())
    lot_size: Mapped[int] = mapped_column(Integer)
    freeze_quantity: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint("lot_size > 0", name="lot_size_positive"),)


class UserBroker(Base):
    """One user's account at one broker: who trades, with what capital and limits."""

    __tablename__ = "user_brokers"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64))
    broker: Mapped[str] = mapped_column(String(32))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    connected: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    available_capital: Mapped[Decimal] = mapped_column(Money())
    max_open_trades: Mapped[int | None] = mapped_column(Integer)
    max_exposure_per_symbol: Mapped[Decimal | None] = mapped_column(Money())
    max_total_exposure: Mapped[Decimal | None] = mapped_column(Money())
    sizing_mode: Mapped[SizingMode] = mapped_column(vocabulary(SizingMode, 24))
    fixed_quantity: Mapped[int | None] = mapped_column(Integer)
    fixed_capital: Mapped[Decimal | None] = mapped_column(Money())
    risk_amount: Mapped[Decimal | None] = mapped_column(Money())
    reward_risk_ratio: Mapped[Decimal] = mapped_column(Money())
    entry_window_start: Mapped[time | None] = mapped_column(Time())
    entry_window_end: Mapped[time | None] = mapped_column(Time())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("user_id", "broker"),)


class Subscription(Base):
    """Which user-broker receives which signals; ``*`` (ANY) is a wildcard."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_broker_id: Mapped[int] = mapped_column(ForeignKey("user_brokers.id"))
    symbol: Mapped[str] = mapped_column(String(64))
    confluence_type: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("user_broker_id", "symbol", "confluence_type"),
        Index("ix_subscriptions_symbol_confluence_type", "symbol", "confluence_type"),
    )


class Signal(Base):
    """A global symbol fact (SMS writes it). Levels are quantized to the tick before the key."""

    __tablename__ = "signals"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(64))
    direction: Mapped[Direction] = mapped_column(vocabulary(Direction, 8))
    confluence_type: Mapped[str] = mapped_column(String(64))
    signal_day: Mapped[date] = mapped_column(Date())
    effective_floor: Mapped[Decimal] = mapped_column(Money())
    effective_ceiling: Mapped[Decimal] = mapped_column(Money())
    status: Mapped[SignalStatus] = mapped_column(vocabulary(SignalStatus, 16))
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # "metadata" is reserved on declarative classes; the column keeps the spec's name.
    signal_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint(
            "symbol",
            "direction",
            "confluence_type",
            "signal_day",
            "effective_floor",
            "effective_ceiling",
        ),
        partial_index(
            "ix_signals_detected",
            "id",
            where="status = 'DETECTED'",
        ),
    )


class SignalDelivery(Base):
    """One signal fanned out to one user-broker; consumed once by entry qualification."""

    __tablename__ = "signal_deliveries"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    signal_id: Mapped[int] = mapped_column(ForeignKey("signals.id"))
    user_broker_id: Mapped[int] = mapped_column(ForeignKey("user_brokers.id"))
    symbol: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("signal_id", "user_broker_id"),
        partial_index(
            "ix_signal_deliveries_unconsumed",
            "id",
            where="consumed_at IS NULL",
        ),
    )


class TradeIntent(Base):
    """The qualification outcome of one delivery, then its execution tracking."""

    __tablename__ = "trade_intents"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("signal_deliveries.id"), unique=True)
    signal_id: Mapped[int] = mapped_column(ForeignKey("signals.id"))
    user_broker_id: Mapped[int] = mapped_column(ForeignKey("user_brokers.id"))
    symbol: Mapped[str] = mapped_column(String(64))
    direction: Mapped[Direction] = mapped_column(vocabulary(Direction, 8))
    decision: Mapped[IntentDecision] = mapped_column(vocabulary(IntentDecision, 16))
    status: Mapped[TradeIntentStatus] = mapped_column(vocabulary(TradeIntentStatus, 16))
    reason_codes: Mapped[list[str]] = mapped_column(JSONDocument)
    quantity: Mapped[int] = mapped_column(Integer)
    entry_price: Mapped[Decimal | None] = mapped_column(Money())
    target_price: Mapped[Decimal | None] = mapped_column(Money())
    stop_price: Mapped[Decimal | None] = mapped_column(Money())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_trade_intents_user_broker_id_status", "user_broker_id", "status"),
        Index("ix_trade_intents_status", "status"),
    )


class Trade(Base):
    """A position, owned by TMS: only ``signal_mgmt.tms`` writes this table."""

    __tablename__ = "trades"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    trade_intent_id: Mapped[int] = mapped_column(ForeignKey("trade_intents.id"), unique=True)
    user_broker_id: Mapped[int] = mapped_column(ForeignKey("user_brokers.id"))
    symbol: Mapped[str] = mapped_column(String(64))
    direction: Mapped[Direction] = mapped_column(vocabulary(Direction, 8))
    quantity: Mapped[int] = mapped_column(Integer)
    entry_price: Mapped[Decimal | None] = mapped_column(Money())
    target_price: Mapped[Decimal] = mapped_column(Money())
    stop_price: Mapped[Decimal] = mapped_column(Money())
    status: Mapped[TradeStatus] = mapped_column(vocabulary(TradeStatus, 16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    exit_price: Mapped[Decimal | None] = mapped_column(Money())
    pnl: Mapped[Decimal | None] = mapped_column(Money())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_trades_symbol_status", "symbol", "status"),
        Index("ix_trades_user_broker_id_status", "user_broker_id", "status"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )


class Order(Base):
    """Every order the library sends. ``client_order_id`` is derived from the intent."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(String(20), unique=True)
    purpose: Mapped[OrderPurpose] = mapped_column(vocabulary(OrderPurpose, 8))
    trade_id: Mapped[int] = mapped_column(ForeignKey("trades.id"))
    trade_intent_id: Mapped[int | None] = mapped_column(ForeignKey("trade_intents.id"))
    # The FK to exit_intents is added by migration 0004_exit (the table does not exist yet).
    exit_intent_id: Mapped[int | None] = mapped_column(BigInteger)
    user_broker_id: Mapped[int] = mapped_column(ForeignKey("user_brokers.id"))
    symbol: Mapped[str] = mapped_column(String(64))
    side: Mapped[OrderSide] = mapped_column(vocabulary(OrderSide, 4))
    quantity: Mapped[int] = mapped_column(Integer)
    order_type: Mapped[OrderType] = mapped_column(vocabulary(OrderType, 8))
    limit_price: Mapped[Decimal | None] = mapped_column(Money())
    slice_no: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    broker_order_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[OrderStatus] = mapped_column(vocabulary(OrderStatus, 16))
    filled_quantity: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    average_price: Mapped[Decimal | None] = mapped_column(Money())
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_orders_trade_id", "trade_id"),
        Index("ix_orders_trade_intent_id", "trade_intent_id"),
        Index("ix_orders_exit_intent_id", "exit_intent_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("slice_no >= 1", name="slice_no_positive"),
    )


# --------------------------------------------------------------------------- EXIT
# (migration 0004_exit)


class ExitReason(StrEnum):
    TARGET = "TARGET"
    STOP_LOSS = "STOP_LOSS"
    TRAILING_STOP = "TRAILING_STOP"
    TIME = "TIME"
    MANUAL = "MANUAL"


class ExitSignalStatus(StrEnum):
    DETECTED = "DETECTED"
    PUBLISHED = "PUBLISHED"


class ExitIntentStatus(StrEnum):
    """PENDING -> APPROVED | REJECTED; APPROVED -> PLACED | FAILED; PLACED -> FILLED | FAILED."""

    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    PLACED = "PLACED"
    FILLED = "FILLED"
    FAILED = "FAILED"


LIVE_EXIT_STATUSES = (ExitIntentStatus.PENDING, ExitIntentStatus.APPROVED, ExitIntentStatus.PLACED)
_LIVE_EXIT = "status IN ({})".format(", ".join(f"'{status}'" for status in LIVE_EXIT_STATUSES))


class ExitEpisode(Base):
    """Per (trade, reason): the current episode number and whether a new one may start.

    A new episode starts only when the condition is ``armed`` (it cleared since
    the last one fired) or ``cooldown_until`` has passed; the guarded UPDATE in
    ``signal_mgmt.exit.episodes`` enforces it, so it holds across restarts and
    processes.
    """

    __tablename__ = "exit_episodes"

    trade_id: Mapped[int] = mapped_column(ForeignKey("trades.id"), primary_key=True)
    exit_reason: Mapped[ExitReason] = mapped_column(vocabulary(ExitReason, 16), primary_key=True)
    episode_id: Mapped[int] = mapped_column(Integer)
    armed: Mapped[bool] = mapped_column(Boolean)
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    cooldown_until: Mapped[datetime] = mapped_column(UTCDateTime())
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint("episode_id >= 1", name="episode_id_positive"),)


class ExitSignal(Base):
    """A trade-level fact: trade T met exit condition R in episode E (SMS writes it)."""

    __tablename__ = "exit_signals"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    trade_id: Mapped[int] = mapped_column(ForeignKey("trades.id"))
    exit_reason: Mapped[ExitReason] = mapped_column(vocabulary(ExitReason, 16))
    episode_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[ExitSignalStatus] = mapped_column(vocabulary(ExitSignalStatus, 16))
    price: Mapped[Decimal] = mapped_column(Money())
    trigger_level: Mapped[Decimal | None] = mapped_column(Money())
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("trade_id", "exit_reason", "episode_id"),
        partial_index(
            "ix_exit_signals_detected",
            "id",
            where="status = 'DETECTED'",
        ),
    )


class ExitIntent(Base):
    """Stage B outcome for the user-broker owning the trade, then its execution tracking."""

    __tablename__ = "exit_intents"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    exit_signal_id: Mapped[int] = mapped_column(ForeignKey("exit_signals.id"), unique=True)
    trade_id: Mapped[int] = mapped_column(ForeignKey("trades.id"))
    user_broker_id: Mapped[int] = mapped_column(ForeignKey("user_brokers.id"))
    exit_reason: Mapped[ExitReason] = mapped_column(vocabulary(ExitReason, 16))
    episode_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[ExitIntentStatus] = mapped_column(vocabulary(ExitIntentStatus, 16))
    reason_codes: Mapped[list[str]] = mapped_column(JSONDocument)
    side: Mapped[OrderSide] = mapped_column(vocabulary(OrderSide, 4))
    quantity: Mapped[int] = mapped_column(Integer)
    order_type: Mapped[OrderType] = mapped_column(vocabulary(OrderType, 8))
    limit_price: Mapped[Decimal | None] = mapped_column(Money())
    slices: Mapped[list[int]] = mapped_column(JSONDocument)
    filled_quantity: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    average_fill_price: Mapped[Decimal | None] = mapped_column(Money())
    failure_reason: Mapped[str | None] = mapped_column(Text)
    # Dispatcher lease: a claimed intent is skipped by other dispatchers until it runs out.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set on a live TARGET when a protective exit pre-empts it: cancel, send nothing more.
    preempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    placed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("trade_id", "user_broker_id", "exit_reason", "episode_id"),
        # At most ONE live exit per trade, whatever its reason or episode.
        partial_index(
            "uq_exit_intents_live_trade_id",
            "trade_id",
            where=_LIVE_EXIT,
            unique=True,
        ),
        partial_index(
            "ix_exit_intents_open",
            "status",
            "id",
            where=_LIVE_EXIT,
        ),
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        CheckConstraint("filled_quantity >= 0", name="filled_quantity_not_negative"),
    )


class ExitTrailingMark(Base):
    """A trailing stop's water mark (best price since entry), so it survives a restart."""

    __tablename__ = "exit_trailing_marks"

    trade_id: Mapped[int] = mapped_column(ForeignKey("trades.id"), primary_key=True)
    water_mark: Mapped[Decimal] = mapped_column(Money())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ExitBudget(Base):
    """Per trade: its filled entry quantity and the quantity its exits hold (migration 0006).

    ``committed_quantity`` sums, over the trade's exit intents, the quantity of
    the live (PENDING / APPROVED / PLACED) and FILLED ones plus what FAILED ones
    filled. Triggers on ``exit_intents`` keep it in the same statement as the
    change, and the CHECK refuses any change that would exit more than the
    entry: the position invariant, enforced by the database on both backends,
    whoever writes the row. Guard triggers refuse resetting it by hand (see
    migration 0006), and ``trades.quantity`` is fixed once a trade has one.
    """

    __tablename__ = "exit_budgets"

    trade_id: Mapped[int] = mapped_column(ForeignKey("trades.id"), primary_key=True)
    entry_quantity: Mapped[int] = mapped_column(Integer)
    committed_quantity: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint("committed_quantity <= entry_quantity", name="within_entry"),
        CheckConstraint("committed_quantity >= 0", name="committed_not_negative"),
    )


# orders.exit_intent_id is declared with the ENTRY tables; its foreign key needs exit_intents.
Order.__table__.append_constraint(  # type: ignore[attr-defined]
    ForeignKeyConstraint(["exit_intent_id"], ["exit_intents.id"])
)
