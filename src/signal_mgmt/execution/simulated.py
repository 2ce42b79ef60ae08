"""SimulatedBroker: an in-memory BrokerGateway for tests, demos and replays.

It fills market orders at the symbol's current price (or rests them when
``auto_fill`` is off), fills marketable limit orders, and can be told to
reject, to be disconnected, to fill partially, to time out on a placement
that did or did not reach it, or to let a fill win the race with a cancel. It
is idempotent by client order id: placing the same id twice returns the first
order and never creates a second one.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

from signal_mgmt.errors import InvalidInputError
from signal_mgmt.execution.broker import (
    Accepted,
    BrokerOrder,
    BrokerUnavailableError,
    OrderRequest,
    OutcomeUnknown,
    PlaceResult,
    Rejected,
)
from signal_mgmt.models import MONEY_STEP, OrderSide, OrderStatus, OrderType


@dataclass(frozen=True, slots=True)
class _Timeout:
    reached_broker: bool


@dataclass(frozen=True, slots=True)
class _Reject:
    reason: str


@dataclass(frozen=True, slots=True)
class _PartialFill:
    quantity: int


_Scripted = _Timeout | _Reject | _PartialFill


@dataclass(frozen=True, slots=True)
class _FillFirst:
    """The next cancel arrives after a fill of ``quantity`` (None: all that is open)."""

    quantity: int | None
    price: Decimal | None


class SimulatedBroker:
    """A broker in memory. ``sleep`` is injected so that latency costs tests nothing."""

    def __init__(
        self,
        prices: Mapping[str, Decimal] | None = None,
        *,
        latency: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        auto_fill: bool = True,
        connected: bool = True,
    ) -> None:
        self._prices = dict(prices or {})
        self._latency = latency
        self._sleep = sleep
        self.auto_fill = auto_fill
        self._connected = connected
        self._orders: dict[str, BrokerOrder] = {}
        self._requests: dict[str, OrderRequest] = {}
        self._script: deque[_Scripted] = deque()
        self._cancel_script: deque[_FillFirst] = deque()
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self.place_calls = 0

    # ------------------------------------------------------------------ scenario controls

    def set_price(self, symbol: str, price: Decimal) -> None:
        """Move the market; resting orders that become marketable fill at once."""
        with self._lock:
            self._prices[symbol] = price
            for client_id, request in self._requests.items():
                if request.symbol == symbol:
                    self._try_fill(client_id)

    def disconnect(self) -> None:
        with self._lock:
            self._connected = False

    def connect(self) -> None:
        with self._lock:
            self._connected = True

    def reject_next(self, reason: str = "REJECTED_BY_BROKER") -> None:
        self._push(_Reject(reason))

    def time_out_next(self, *, reached_broker: bool) -> None:
        """The next placement times out; ``reached_broker`` says whether the order exists."""
        self._push(_Timeout(reached_broker))

    def fill_partially_next(self, quantity: int) -> None:
        """The next accepted order fills only ``quantity`` now; the rest stays open."""
        self._push(_PartialFill(quantity))

    def fill_before_next_cancel(
        self, quantity: int | None = None, price: Decimal | None = None
    ) -> None:
        """The next cancel loses the race: the order first fills ``quantity`` (default: all
        of it) at ``price`` (default: the market), and only the rest, if any, is cancelled."""
        with self._lock:
            self._cancel_script.append(_FillFirst(quantity, price))

    def net_position(self, symbol: str) -> int:
        """Filled BUY quantity minus filled SELL quantity of ``symbol``, over every order."""
        with self._lock:
            return sum(
                (1 if request.side is OrderSide.BUY else -1)
                * self._orders[client_id].filled_quantity
                for client_id, request in self._requests.items()
                if request.symbol == symbol
            )

    def fill(
        self, client_order_id: str, price: Decimal | None = None, quantity: int | None = None
    ) -> BrokerOrder:
        """Fill a resting order (all of it by default) at ``price`` or the market."""
        with self._lock:
            order = self._orders[client_order_id]
            fill_price = price if price is not None else self._market(order.client_order_id)
            remaining = order.quantity - order.filled_quantity
            self._orders[client_order_id] = _filled(order, quantity or remaining, fill_price)
            return self._orders[client_order_id]

    @property
    def orders(self) -> dict[str, BrokerOrder]:
        with self._lock:
            return dict(self._orders)

    # ------------------------------------------------------------------ BrokerGateway

    def is_connected(self) -> bool:
        with self._lock:
            return self._connected

    def place(self, request: OrderRequest) -> PlaceResult:
        _validate(request)
        self._sleep(self._latency)
        with self._lock:
            self.place_calls += 1
            if not self._connected:
                return Rejected("BROKER_DISCONNECTED", transient=True)
            existing = self._orders.get(request.client_order_id)
            if existing is not None:  # idempotent by client order id
                return Accepted(existing)
            scripted = self._script.popleft() if self._script else None
            if isinstance(scripted, _Reject):
                return Rejected(scripted.reason)
            if isinstance(scripted, _Timeout):
                if scripted.reached_broker:
                    self._accept(request, None)
                return OutcomeUnknown("TIMEOUT")
            partial = scripted.quantity if isinstance(scripted, _PartialFill) else None
            return Accepted(self._accept(request, partial))

    def order_status(self, client_order_id: str) -> BrokerOrder | None:
        self._sleep(self._latency)
        with self._lock:
            self._require_connected()
            return self._orders.get(client_order_id)

    def cancel(self, client_order_id: str) -> BrokerOrder | None:
        with self._lock:
            self._require_connected()
            order = self._orders.get(client_order_id)
            if order is not None and not order.is_final and self._cancel_script:
                first = self._cancel_script.popleft()
                price = first.price if first.price is not None else self._market(client_order_id)
                remaining = order.quantity - order.filled_quantity
                order = _filled(order, first.quantity or remaining, price)
                self._orders[client_order_id] = order
            if order is None or order.is_final:
                return order
            self._orders[client_order_id] = replace(order, status=OrderStatus.CANCELLED)
            return self._orders[client_order_id]

    # ------------------------------------------------------------------ internals

    def _push(self, scripted: _Scripted) -> None:
        with self._lock:
            self._script.append(scripted)

    def _require_connected(self) -> None:
        if not self._connected:
            raise BrokerUnavailableError("simulated broker is disconnected")

    def _market(self, client_order_id: str) -> Decimal:
        symbol = self._requests[client_order_id].symbol
        if symbol not in self._prices:
            raise InvalidInputError(f"no simulated price for {symbol}", field="symbol")
        return self._prices[symbol]

    def _accept(self, request: OrderRequest, partial: int | None) -> BrokerOrder:
        order = BrokerOrder(
            client_order_id=request.client_order_id,
            broker_order_id=f"SIM{next(self._ids):08d}",
            status=OrderStatus.ACCEPTED,
            quantity=request.quantity,
        )
        self._orders[request.client_order_id] = order
        self._requests[request.client_order_id] = request
        if partial is not None:
            self._orders[request.client_order_id] = _filled(
                order, partial, self._market(request.client_order_id)
            )
        elif self.auto_fill:
            self._try_fill(request.client_order_id)
        return self._orders[request.client_order_id]

    def _try_fill(self, client_order_id: str) -> None:
        order = self._orders[client_order_id]
        request = self._requests[client_order_id]
        if not self.auto_fill or order.is_final or request.symbol not in self._prices:
            return
        market = self._prices[request.symbol]
        if request.order_type is OrderType.LIMIT and not _marketable(request, market):
            return
        remaining = order.quantity - order.filled_quantity
        self._orders[client_order_id] = _filled(order, remaining, market)


def _marketable(request: OrderRequest, market: Decimal) -> bool:
    assert request.limit_price is not None
    if request.side is OrderSide.BUY:
        return market <= request.limit_price
    return market >= request.limit_price


def _filled(order: BrokerOrder, quantity: int, price: Decimal) -> BrokerOrder:
    """``order`` after a fill of ``quantity`` at ``price`` (volume-weighted average)."""
    quantity = min(quantity, order.quantity - order.filled_quantity)
    if quantity <= 0:
        return order
    filled = order.filled_quantity + quantity
    previous = (order.average_price or Decimal(0)) * order.filled_quantity
    average = ((previous + price * quantity) / filled).quantize(MONEY_STEP)
    status = OrderStatus.FILLED if filled == order.quantity else OrderStatus.PARTIALLY_FILLED
    return replace(order, status=status, filled_quantity=filled, average_price=average)


def _validate(request: OrderRequest) -> None:
    if request.quantity <= 0:
        raise InvalidInputError("quantity must be positive", field="quantity")
    if request.order_type is OrderType.LIMIT and request.limit_price is None:
        raise InvalidInputError("a LIMIT order needs a limit price", field="limit_price")
