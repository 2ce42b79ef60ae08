"""Orders: deterministic client order ids, the ``orders`` table, and placement with reconcile.

Every order the library sends is first recorded (``record_orders``) with a
client order id derived from its intent, so a retried placement can never
double it. Then::

    place_with_reconcile(engine, broker, client_order_id, clock,
                         max_attempts=3, backoff=0.5, sleep=time.sleep) -> OrderRecord

sends it. Before the broker is called the row moves to UNKNOWN (committed), so
a crash mid-call leaves a trace. Before any re-send the broker is asked for the
client order id: an order it knows is adopted, never placed again. An unknown
outcome is not a failure; it comes back as an ``OrderRecord`` in UNKNOWN and
``refresh_order`` settles it later. The returned record says what happened:

- FILLED / PARTIALLY_FILLED / ACCEPTED: the broker has the order;
- REJECTED: a definite refusal; nothing exists at the broker;
- NEW (with ``last_error``): every attempt hit an outage; nothing was sent;
- UNKNOWN: it may exist; reconcile with ``refresh_order``.

Entry orders (tms/) and exit orders (execution dispatcher) use the same path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, Row, select, update

from signal_mgmt.errors import InvalidInputError, NotFoundError
from signal_mgmt.execution.broker import (
    CLIENT_ORDER_ID_MAX,
    Accepted,
    BrokerGateway,
    BrokerOrder,
    BrokerUnavailableError,
    OrderRequest,
    OutcomeUnknown,
    Rejected,
)
from signal_mgmt.market.clock import Clock
from signal_mgmt.models import Order, OrderPurpose, OrderSide, OrderStatus, OrderType
from signal_mgmt.storage.db import Executor, as_connection, transaction
from signal_mgmt.storage.idempotent import insert_ignore

_PREFIX = {OrderPurpose.ENTRY: "EN", OrderPurpose.EXIT: "EX"}
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
MAX_SLICES = 999

FINAL_STATUSES = frozenset({OrderStatus.FILLED, OrderStatus.REJECTED, OrderStatus.CANCELLED})


def client_order_id(purpose: OrderPurpose, intent_id: int, slice_no: int = 1) -> str:
    """``EN``/``EX`` + the intent id in base 36 + ``-`` + slice: at most 19 characters."""
    if intent_id <= 0:
        raise InvalidInputError("intent id must be positive", field="intent_id", value=intent_id)
    if not 1 <= slice_no <= MAX_SLICES:
        raise InvalidInputError(f"slice_no must be 1..{MAX_SLICES}", field="slice_no")
    digits = ""
    while intent_id:
        intent_id, rest = divmod(intent_id, 36)
        digits = _BASE36[rest] + digits
    value = f"{_PREFIX[OrderPurpose(purpose)]}{digits}-{slice_no}"
    assert len(value) <= CLIENT_ORDER_ID_MAX
    return value


@dataclass(frozen=True, slots=True)
class NewOrder:
    """An order about to be recorded; exactly one of the two intent ids is set."""

    purpose: OrderPurpose
    trade_id: int
    user_broker_id: int
    symbol: str
    side: OrderSide
    quantity: int
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    slice_no: int = 1
    trade_intent_id: int | None = None
    exit_intent_id: int | None = None

    def __post_init__(self) -> None:
        if self.quantity <= 0:
            raise InvalidInputError("quantity must be positive", field="quantity")
        if (self.order_type is OrderType.LIMIT) != (self.limit_price is not None):
            raise InvalidInputError("a limit price goes with a LIMIT order", field="limit_price")
        if self.limit_price is not None and not (
            self.limit_price.is_finite() and self.limit_price > 0
        ):
            raise InvalidInputError("limit price must be positive", field="limit_price")
        if (self.trade_intent_id is None) == (self.exit_intent_id is None):
            raise InvalidInputError("an order comes from exactly one intent", field="intent")

    @property
    def client_order_id(self) -> str:
        intent = self.trade_intent_id if self.trade_intent_id is not None else self.exit_intent_id
        assert intent is not None
        return client_order_id(self.purpose, intent, self.slice_no)


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One row of ``orders``."""

    id: int
    client_order_id: str
    purpose: OrderPurpose
    trade_id: int
    trade_intent_id: int | None
    exit_intent_id: int | None
    user_broker_id: int
    symbol: str
    side: OrderSide
    quantity: int
    order_type: OrderType
    limit_price: Decimal | None
    slice_no: int
    broker_order_id: str | None
    status: OrderStatus
    filled_quantity: int
    average_price: Decimal | None
    attempts: int
    last_error: str | None

    @classmethod
    def from_row(cls, row: Row[Any]) -> OrderRecord:
        return cls(
            id=row.id,
            client_order_id=row.client_order_id,
            purpose=OrderPurpose(row.purpose),
            trade_id=row.trade_id,
            trade_intent_id=row.trade_intent_id,
            exit_intent_id=row.exit_intent_id,
            user_broker_id=row.user_broker_id,
            symbol=row.symbol,
            side=OrderSide(row.side),
            quantity=row.quantity,
            order_type=OrderType(row.order_type),
            limit_price=row.limit_price,
            slice_no=row.slice_no,
            broker_order_id=row.broker_order_id,
            status=OrderStatus(row.status),
            filled_quantity=row.filled_quantity,
            average_price=row.average_price,
            attempts=row.attempts,
            last_error=row.last_error,
        )

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    def request(self) -> OrderRequest:
        return OrderRequest(
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            side=self.side,
            quantity=self.quantity,
            order_type=self.order_type,
            limit_price=self.limit_price,
        )


def record_orders(
    connection: Executor, orders: Sequence[NewOrder], clock: Clock
) -> list[OrderRecord]:
    """Insert the orders (status NEW) unless their client order ids exist; return all of them."""
    if not orders:
        return []
    conn = as_connection(connection)
    now = clock.now()
    rows = [
        {
            "client_order_id": order.client_order_id,
            "purpose": order.purpose,
            "trade_id": order.trade_id,
            "trade_intent_id": order.trade_intent_id,
            "exit_intent_id": order.exit_intent_id,
            "user_broker_id": order.user_broker_id,
            "symbol": order.symbol,
            "side": order.side,
            "quantity": order.quantity,
            "order_type": order.order_type,
            "limit_price": order.limit_price,
            "slice_no": order.slice_no,
            "status": OrderStatus.NEW,
            "filled_quantity": 0,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for order in orders
    ]
    conn.execute(insert_ignore(conn, Order, ["client_order_id"]), rows)
    ids = [order.client_order_id for order in orders]
    found = conn.execute(select(Order.__table__).where(Order.client_order_id.in_(ids))).all()
    by_id = {record.client_order_id: record for record in map(OrderRecord.from_row, found)}
    return [by_id[cid] for cid in ids]


def load_order(connection: Connection, client_order_id: str) -> OrderRecord:
    row = connection.execute(
        select(Order.__table__).where(Order.client_order_id == client_order_id)
    ).first()
    if row is None:
        raise NotFoundError("order", client_order_id)
    return OrderRecord.from_row(row)


def apply_broker_order(
    connection: Connection, order: OrderRecord, known: BrokerOrder, clock: Clock
) -> OrderRecord:
    """Store what the broker says about ``order``; a final order or an older view is kept.

    Guarded by the status and filled quantity we read, so two reconcilers never
    move an order backwards; the loser re-reads the winner's row.
    """
    if order.is_final or known.filled_quantity < order.filled_quantity:
        return order
    connection.execute(
        update(Order)
        .where(
            Order.id == order.id,
            Order.status == order.status,
            Order.filled_quantity == order.filled_quantity,
        )
        .values(
            status=known.status,
            broker_order_id=known.broker_order_id,
            filled_quantity=known.filled_quantity,
            average_price=known.average_price,
            last_error=known.reason,
            updated_at=clock.now(),
        )
    )
    return load_order(connection, order.client_order_id)


def refresh_order(
    engine: Engine, broker: BrokerGateway, client_order_id: str, clock: Clock
) -> OrderRecord:
    """Ask the broker about one order and store the answer (used by reconcilers).

    A broker that cannot be asked leaves the order as it is. An UNKNOWN order the
    broker never received stays UNKNOWN here: ``place_with_reconcile`` resends it.
    """
    with transaction(engine) as conn:
        order = load_order(conn, client_order_id)
    if order.is_final:
        return order
    try:
        known = broker.order_status(client_order_id)
    except BrokerUnavailableError:
        return order
    if known is None:
        return order
    with transaction(engine) as conn:
        return apply_broker_order(conn, load_order(conn, client_order_id), known, clock)


def withdraw_order(
    engine: Engine, broker: BrokerGateway, client_order_id: str, clock: Clock, reason: str
) -> OrderRecord:
    """Give up sending a recorded order: it ends REJECTED (``reason``) unless the broker has it.

    A NEW order was never sent. An UNKNOWN one is first asked for by client order
    id: an order the broker has is adopted (and must be cancelled by the caller);
    a broker that cannot be asked leaves it UNKNOWN, to be settled later.
    """
    with transaction(engine) as conn:
        order = load_order(conn, client_order_id)
    if order.status is OrderStatus.UNKNOWN:
        try:
            known = broker.order_status(client_order_id)
        except BrokerUnavailableError:
            return order
        if known is not None:
            with transaction(engine) as conn:
                return apply_broker_order(conn, order, known, clock)
    if order.status not in {OrderStatus.NEW, OrderStatus.UNKNOWN}:
        return order
    with transaction(engine) as conn:
        conn.execute(
            update(Order)
            .where(Order.id == order.id, Order.status == order.status)
            .values(status=OrderStatus.REJECTED, last_error=reason, updated_at=clock.now())
        )
        return load_order(conn, client_order_id)


def cancel_order(
    engine: Engine, broker: BrokerGateway, order: OrderRecord, clock: Clock
) -> OrderRecord:
    """Cancel what rests of ``order`` at the broker and store the broker's answer.

    A final order is left alone; a broker that cannot be asked leaves the order as
    it is, for the next call. What filled before the cancel stays filled.
    """
    if order.is_final:
        return order
    try:
        broker.cancel(order.client_order_id)
    except BrokerUnavailableError:
        return order
    return refresh_order(engine, broker, order.client_order_id, clock)


def place_with_reconcile(
    engine: Engine,
    broker: BrokerGateway,
    client_order_id: str,
    clock: Clock,
    *,
    max_attempts: int = 3,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> OrderRecord:
    """Send a recorded order at most once at the broker; see the module docstring.

    A loop rather than tenacity: each turn must first decide, from the broker's
    own answer, whether there is anything left to send.
    """
    if max_attempts < 1:
        raise InvalidInputError("max_attempts must be at least 1", field="max_attempts")
    with transaction(engine) as conn:
        order = load_order(conn, client_order_id)
    for attempt in range(1, max_attempts + 1):
        if order.status is not OrderStatus.NEW:
            settled = _settle_at_broker(engine, broker, order, clock)
            if settled is not None:
                return settled
        claimed = _mark_sending(engine, order, clock)
        if claimed is None:  # another worker is sending it: reconcile, never send twice
            return refresh_order(engine, broker, client_order_id, clock)
        order = _apply_result(engine, claimed, broker.place(claimed.request()), clock)
        if order.status is not OrderStatus.NEW and order.status is not OrderStatus.UNKNOWN:
            return order
        if attempt < max_attempts:
            sleep(backoff * 2 ** (attempt - 1))
    return order


def _settle_at_broker(
    engine: Engine, broker: BrokerGateway, order: OrderRecord, clock: Clock
) -> OrderRecord | None:
    """The order's final word if the broker has (or may have) it; None to send it (again)."""
    if order.status is not OrderStatus.UNKNOWN:
        return refresh_order(engine, broker, order.client_order_id, clock)
    try:
        known = broker.order_status(order.client_order_id)
    except BrokerUnavailableError:
        return order  # still unknown; a later refresh settles it
    if known is None:
        return None  # it never reached the broker: safe to send
    with transaction(engine) as conn:
        return apply_broker_order(conn, order, known, clock)


def _mark_sending(engine: Engine, order: OrderRecord, clock: Clock) -> OrderRecord | None:
    """NEW/UNKNOWN -> UNKNOWN with one more attempt, committed before the broker call.

    The guard on ``attempts`` makes the claim exclusive: of two workers that read
    the same row, one moves it and the other gets None.
    """
    with transaction(engine) as conn:
        moved = conn.execute(
            update(Order)
            .where(
                Order.id == order.id,
                Order.status == order.status,
                Order.attempts == order.attempts,
            )
            .values(
                status=OrderStatus.UNKNOWN,
                attempts=order.attempts + 1,
                updated_at=clock.now(),
            )
        ).rowcount
        return load_order(conn, order.client_order_id) if moved == 1 else None


def _apply_result(
    engine: Engine,
    order: OrderRecord,
    result: Accepted | Rejected | OutcomeUnknown,
    clock: Clock,
) -> OrderRecord:
    with transaction(engine) as conn:
        if isinstance(result, Accepted):
            return apply_broker_order(conn, order, result.order, clock)
        if isinstance(result, Rejected):
            # A transient refusal (outage) means nothing was sent: the order is NEW again.
            status = OrderStatus.NEW if result.transient else OrderStatus.REJECTED
            values: dict[str, Any] = {"status": status, "last_error": result.reason}
        else:
            values = {"last_error": result.reason}
        conn.execute(
            update(Order)
            .where(Order.id == order.id, Order.status == OrderStatus.UNKNOWN)
            .values(**values, updated_at=clock.now())
        )
        return load_order(conn, order.client_order_id)
