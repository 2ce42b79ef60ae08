"""Orders: deterministic client ids, idempotent recording, placement with reconcile."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select, update

from entry_support import seed_trade
from signal_mgmt.errors import InvalidInputError
from signal_mgmt.execution import (
    NewOrder,
    SimulatedBroker,
    client_order_id,
    place_with_reconcile,
    record_orders,
    refresh_order,
)
from signal_mgmt.execution.broker import CLIENT_ORDER_ID_MAX
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import Order, OrderPurpose, OrderSide, OrderStatus
from signal_mgmt.storage.db import transaction


@given(
    st.integers(min_value=1, max_value=2**63 - 1),
    st.integers(min_value=1, max_value=999),
    st.sampled_from(OrderPurpose),
)
def test_client_order_ids_are_short_deterministic_and_distinct(
    intent: int, slice_no: int, purpose: OrderPurpose
) -> None:
    cid = client_order_id(purpose, intent, slice_no)
    assert len(cid) <= CLIENT_ORDER_ID_MAX
    assert cid == client_order_id(purpose, intent, slice_no)
    assert cid != client_order_id(purpose, intent + 1, slice_no)
    assert cid != client_order_id(purpose, intent, slice_no % 999 + 1)
    other = OrderPurpose.EXIT if purpose is OrderPurpose.ENTRY else OrderPurpose.ENTRY
    assert cid != client_order_id(other, intent, slice_no)


@pytest.mark.parametrize(("intent", "slice_no"), [(0, 1), (-5, 1), (1, 0), (1, 1000)])
def test_client_order_id_refuses_bad_parts(intent: int, slice_no: int) -> None:
    with pytest.raises(InvalidInputError):
        client_order_id(OrderPurpose.ENTRY, intent, slice_no)


def entry_order(engine: Engine, clock: ManualClock) -> str:
    with transaction(engine) as conn:
        ids = seed_trade(conn)
        new = NewOrder(
            purpose=OrderPurpose.ENTRY,
            trade_id=ids["trade"],
            user_broker_id=ids["user_broker"],
            symbol="INFY",
            side=OrderSide.BUY,
            quantity=10,
            trade_intent_id=ids["intent"],
        )
        [first] = record_orders(conn, [new], clock)
        [again] = record_orders(conn, [new], clock)
    assert first == again
    assert first.status is OrderStatus.NEW
    return first.client_order_id


def never_sleep(seconds: float) -> None:
    pytest.fail(f"slept {seconds}s: the order should not need a retry")


def order_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Order)).scalar_one()


def test_fill_on_first_try_and_never_placed_again(engine: Engine, clock: ManualClock) -> None:
    cid = entry_order(engine, clock)
    broker = SimulatedBroker({"INFY": Decimal("100.10")})
    done = place_with_reconcile(engine, broker, cid, clock, sleep=never_sleep)
    assert (done.status, done.filled_quantity, done.average_price) == (
        OrderStatus.FILLED,
        10,
        Decimal("100.10"),
    )
    assert done.broker_order_id is not None
    assert place_with_reconcile(engine, broker, cid, clock) == done
    assert broker.place_calls == 1
    assert order_rows(engine) == 1


def test_outage_retries_with_backoff_and_leaves_the_order_new(
    engine: Engine, clock: ManualClock
) -> None:
    cid = entry_order(engine, clock)
    broker = SimulatedBroker({"INFY": Decimal(100)}, connected=False)
    slept: list[float] = []
    done = place_with_reconcile(engine, broker, cid, clock, max_attempts=3, sleep=slept.append)
    assert (done.status, done.attempts, done.last_error) == (
        OrderStatus.NEW,
        3,
        "BROKER_DISCONNECTED",
    )
    assert slept == [0.5, 1.0]
    assert broker.orders == {}


def test_definite_rejection_is_final(engine: Engine, clock: ManualClock) -> None:
    cid = entry_order(engine, clock)
    broker = SimulatedBroker({"INFY": Decimal(100)})
    broker.reject_next("RMS_LIMIT")
    done = place_with_reconcile(engine, broker, cid, clock, sleep=never_sleep)
    assert (done.status, done.last_error) == (OrderStatus.REJECTED, "RMS_LIMIT")
    assert place_with_reconcile(engine, broker, cid, clock) == done
    assert broker.place_calls == 1


def test_timeout_that_reached_the_broker_is_adopted_not_resent(
    engine: Engine, clock: ManualClock
) -> None:
    cid = entry_order(engine, clock)
    broker = SimulatedBroker({"INFY": Decimal(100)})
    broker.time_out_next(reached_broker=True)
    done = place_with_reconcile(engine, broker, cid, clock, sleep=lambda _: None)
    assert done.status is OrderStatus.FILLED
    assert broker.place_calls == 1
    assert len(broker.orders) == 1


def test_timeout_that_never_arrived_is_sent_again(engine: Engine, clock: ManualClock) -> None:
    cid = entry_order(engine, clock)
    broker = SimulatedBroker({"INFY": Decimal(100)})
    broker.time_out_next(reached_broker=False)
    done = place_with_reconcile(engine, broker, cid, clock, sleep=lambda _: None)
    assert (done.status, done.attempts) == (OrderStatus.FILLED, 2)
    assert broker.place_calls == 2
    assert len(broker.orders) == 1


def test_unknown_outcome_stays_unknown_until_reconciled(engine: Engine, clock: ManualClock) -> None:
    cid = entry_order(engine, clock)
    broker = SimulatedBroker({"INFY": Decimal(100)})
    broker.time_out_next(reached_broker=True)

    def outage_during_backoff(_: float) -> None:
        broker.disconnect()

    done = place_with_reconcile(engine, broker, cid, clock, sleep=outage_during_backoff)
    assert done.status is OrderStatus.UNKNOWN  # not a failure
    assert refresh_order(engine, broker, cid, clock).status is OrderStatus.UNKNOWN
    broker.connect()
    assert refresh_order(engine, broker, cid, clock).status is OrderStatus.FILLED
    assert broker.place_calls == 1


def test_crash_after_marking_unknown_is_resent_only_if_absent(
    engine: Engine, clock: ManualClock
) -> None:
    cid = entry_order(engine, clock)
    with transaction(engine) as conn:  # a worker died between the commit and the broker call
        conn.execute(update(Order).values(status=OrderStatus.UNKNOWN.value, attempts=1))
    broker = SimulatedBroker({"INFY": Decimal(100)})
    done = place_with_reconcile(engine, broker, cid, clock, sleep=never_sleep)
    assert (done.status, done.attempts) == (OrderStatus.FILLED, 2)
    assert broker.place_calls == 1


def test_new_order_refuses_bad_input() -> None:
    base = {
        "purpose": OrderPurpose.ENTRY,
        "trade_id": 1,
        "user_broker_id": 1,
        "symbol": "INFY",
        "side": OrderSide.BUY,
        "trade_intent_id": 1,
    }
    with pytest.raises(InvalidInputError):
        NewOrder(quantity=0, **base)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        NewOrder(quantity=1, limit_price=Decimal(1), **base)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        NewOrder(quantity=1, exit_intent_id=2, **base)  # type: ignore[arg-type]
