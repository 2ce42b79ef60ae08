"""SimulatedBroker: fills, idempotency, rejections, outages, timeouts, partial fills."""

from __future__ import annotations

from decimal import Decimal

import pytest

from signal_mgmt.errors import InvalidInputError
from signal_mgmt.execution import (
    Accepted,
    BrokerUnavailableError,
    OrderRequest,
    OutcomeUnknown,
    Rejected,
    SimulatedBroker,
)
from signal_mgmt.models import OrderSide, OrderStatus, OrderType


def market(cid: str = "EN1-1", qty: int = 10, side: OrderSide = OrderSide.BUY) -> OrderRequest:
    return OrderRequest(cid, "INFY", side, qty, OrderType.MARKET)


def limit(price: str, side: OrderSide = OrderSide.SELL) -> OrderRequest:
    return OrderRequest("EX1-1", "INFY", side, 10, OrderType.LIMIT, Decimal(price))


def test_market_order_fills_at_the_market_after_the_injected_latency() -> None:
    slept: list[float] = []
    broker = SimulatedBroker({"INFY": Decimal("101.35")}, latency=0.25, sleep=slept.append)
    result = broker.place(market())
    assert isinstance(result, Accepted)
    assert result.order.status is OrderStatus.FILLED
    assert (result.order.filled_quantity, result.order.average_price) == (10, Decimal("101.35"))
    assert slept == [0.25]


def test_same_client_order_id_never_makes_two_orders() -> None:
    broker = SimulatedBroker({"INFY": Decimal(100)})
    first = broker.place(market())
    second = broker.place(market())
    assert isinstance(first, Accepted)
    assert second == first
    assert len(broker.orders) == 1


def test_rejection_and_outage_are_definite_no_order() -> None:
    broker = SimulatedBroker({"INFY": Decimal(100)})
    broker.reject_next("INSUFFICIENT_MARGIN")
    assert broker.place(market()) == Rejected("INSUFFICIENT_MARGIN")
    broker.disconnect()
    assert broker.place(market("EN2-1")) == Rejected("BROKER_DISCONNECTED", transient=True)
    assert not broker.is_connected()
    with pytest.raises(BrokerUnavailableError):
        broker.order_status("EN2-1")
    broker.connect()
    assert broker.orders == {}


@pytest.mark.parametrize("reached", [True, False])
def test_timeout_may_or_may_not_have_reached_the_broker(reached: bool) -> None:
    broker = SimulatedBroker({"INFY": Decimal(100)})
    broker.time_out_next(reached_broker=reached)
    assert isinstance(broker.place(market()), OutcomeUnknown)
    known = broker.order_status("EN1-1")
    assert (known is not None) is reached


def test_partial_fill_then_the_rest() -> None:
    broker = SimulatedBroker({"INFY": Decimal(100)})
    broker.fill_partially_next(4)
    result = broker.place(market())
    assert isinstance(result, Accepted)
    assert (result.order.status, result.order.filled_quantity) == (OrderStatus.PARTIALLY_FILLED, 4)
    done = broker.fill("EN1-1", price=Decimal(101))
    assert (done.status, done.filled_quantity) == (OrderStatus.FILLED, 10)
    assert done.average_price == Decimal("100.6")


def test_limit_order_rests_until_the_market_crosses() -> None:
    broker = SimulatedBroker({"INFY": Decimal(100)})
    result = broker.place(limit("102.00"))
    assert isinstance(result, Accepted)
    assert result.order.status is OrderStatus.ACCEPTED
    broker.set_price("INFY", Decimal("102.05"))
    filled = broker.order_status("EX1-1")
    assert filled is not None
    assert (filled.status, filled.average_price) == (OrderStatus.FILLED, Decimal("102.05"))


def test_manual_fill_mode_and_cancel() -> None:
    broker = SimulatedBroker({"INFY": Decimal(100)}, auto_fill=False)
    result = broker.place(market())
    assert isinstance(result, Accepted)
    assert result.order.status is OrderStatus.ACCEPTED
    cancelled = broker.cancel("EN1-1")
    assert cancelled is not None
    assert cancelled.status is OrderStatus.CANCELLED
    assert broker.cancel("nope") is None


def test_bad_requests_are_refused() -> None:
    broker = SimulatedBroker({"INFY": Decimal(100)})
    with pytest.raises(InvalidInputError):
        broker.place(market(qty=0))
    with pytest.raises(InvalidInputError):
        broker.place(OrderRequest("X", "INFY", OrderSide.BUY, 1, OrderType.LIMIT))
