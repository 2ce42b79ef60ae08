"""Property: whatever the broker does (outages, refusals, timeouts that did or did not reach it,
failed lookups), place_with_reconcile never sends an order the broker already has, and the
stored order ends agreeing with the broker."""

from __future__ import annotations

import itertools
from collections import deque
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from entry_support import seed_trade
from signal_mgmt.execution import (
    BrokerOrder,
    BrokerUnavailableError,
    NewOrder,
    OrderRequest,
    PlaceResult,
    Rejected,
    SimulatedBroker,
    place_with_reconcile,
    record_orders,
    refresh_order,
)
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import OrderPurpose, OrderSide, OrderStatus
from signal_mgmt.storage.db import transaction

PLACEMENTS = ["ok", "outage", "refused", "timeout_reached", "timeout_lost"]


class ScriptedBroker(SimulatedBroker):
    """A SimulatedBroker whose next placements and lookups follow a script, and which
    records any placement of a client order id it already holds (a double send)."""

    def __init__(self, placements: list[str], lookups_fail: list[bool]) -> None:
        super().__init__({"X": Decimal(100)})
        self.placements = deque(placements)
        self.lookups_fail = deque(lookups_fail)
        self.double_sends = 0

    def place(self, request: OrderRequest) -> PlaceResult:
        if request.client_order_id in self.orders:
            self.double_sends += 1
        action = self.placements.popleft() if self.placements else "ok"
        if action == "outage":
            return Rejected("BROKER_DISCONNECTED", transient=True)
        if action == "refused":
            self.reject_next("RMS")
        elif action.startswith("timeout"):
            self.time_out_next(reached_broker=action == "timeout_reached")
        return super().place(request)

    def order_status(self, client_order_id: str) -> BrokerOrder | None:
        if self.lookups_fail and self.lookups_fail.popleft():
            raise BrokerUnavailableError("lookup timed out")
        return super().order_status(client_order_id)


symbols = (f"S{n}" for n in itertools.count())


def _no_wait(_: float) -> None:
    pass


@given(
    placements=st.lists(st.sampled_from(PLACEMENTS), max_size=6),
    lookups_fail=st.lists(st.booleans(), max_size=6),
)
def test_never_sent_twice_and_ends_agreeing_with_the_broker(
    engine: Engine, clock: ManualClock, placements: list[str], lookups_fail: list[bool]
) -> None:
    symbol = next(symbols)  # each example gets its own rows in the shared database
    with transaction(engine) as conn:
        ids = seed_trade(conn, symbol=symbol)
        [order] = record_orders(
            conn,
            [
                NewOrder(
                    purpose=OrderPurpose.ENTRY,
                    trade_id=ids["trade"],
                    user_broker_id=ids["user_broker"],
                    symbol="X",
                    side=OrderSide.BUY,
                    quantity=5,
                    trade_intent_id=ids["intent"],
                )
            ],
            clock,
        )
    broker = ScriptedBroker(placements, lookups_fail)
    cid = order.client_order_id
    for _ in range(20):  # the script runs out within 12 broker calls; then all goes well
        record = place_with_reconcile(engine, broker, cid, clock, max_attempts=2, sleep=_no_wait)
        if record.status is OrderStatus.UNKNOWN:
            record = refresh_order(engine, broker, cid, clock)
        if record.is_final:
            break
    assert broker.double_sends == 0
    known = broker.orders.get(cid)
    assert record.status in {OrderStatus.FILLED, OrderStatus.REJECTED}
    if record.status is OrderStatus.FILLED:
        assert known is not None
        assert (record.filled_quantity, record.average_price) == (5, Decimal(100))
        assert record.broker_order_id == known.broker_order_id
    else:
        assert known is None
        assert "refused" in placements
