"""Issue 11: no entry order leaves after the entry cut-off of its trading day, and a
partly filled entry is cut at the cut-off and opened for what filled (both backends)."""

from __future__ import annotations

import json
from datetime import date, time, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select

from entry_world import World, at, make_world
from exit_support import rows
from loop_support import start_tms
from signal_mgmt import TradeLoop
from signal_mgmt.entry.coordinator import EntryCoordinator
from signal_mgmt.execution.simulated import SimulatedBroker
from signal_mgmt.exit.settings import ExitSettings
from signal_mgmt.market.calendar import nse_calendar
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import ExitIntent, Order, OutboxRow, Trade, TradeIntent


def tms(
    engine: Engine, clock: ManualClock, settings: ExitSettings | None = None
) -> tuple[World, SimulatedBroker, TradeLoop, EntryCoordinator]:
    world = make_world(engine, clock, users=1, tcs_only=False)
    broker = SimulatedBroker({"INFY": Decimal("100")})
    loop, entry = start_tms(engine, clock, broker, settings)
    return world, broker, loop, entry


def entry_orders_at_broker(broker: SimulatedBroker) -> list[str]:
    return [cid for cid in broker.orders if cid.startswith("EN")]


def event_types(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(OutboxRow.event_type).order_by(OutboxRow.id)).scalars())


@pytest.mark.parametrize("restart", [False, True], ids=["same-day-pass", "next-day-replay"])
def test_an_entry_whose_send_timed_out_is_not_sent_after_the_cutoff(
    engine: Engine, clock: ManualClock, restart: bool
) -> None:
    """Approved at 15:14, every attempt timed out before reaching the broker: a pass at
    15:20, or a new process's replay at 09:20 the next day, sends nothing and fails it."""
    clock.set(at(15, 14))
    world, broker, loop, entry = tms(engine, clock)
    for _ in range(3):
        broker.time_out_next(reached_broker=False)
    entry.process(world.candidate())
    [intent] = rows(engine, TradeIntent)
    assert intent.status == "PLACED"
    assert entry_orders_at_broker(broker) == []
    if restart:
        clock.set(nse_calendar().at_local(date(2026, 11, 26), time(9, 20)))
        loop, _ = start_tms(engine, clock, broker)
        loop.replay()
    else:
        clock.set(at(15, 20))
        loop.run_once()
    assert entry_orders_at_broker(broker) == []
    [intent] = rows(engine, TradeIntent)
    [trade] = rows(engine, Trade)
    assert (intent.status, trade.status) == ("FAILED", "ENTRY_FAILED")
    assert {(o.status, o.last_error) for o in rows(engine, Order)} == {("REJECTED", "ENTRY_CUTOFF")}
    assert event_types(engine)[-2:] == ["TRADE_INTENT_FAILED", "TRADE_ENTRY_FAILED"]
    loop.run_once()
    assert entry_orders_at_broker(broker) == []


def test_a_partly_filled_entry_is_cut_at_the_cutoff_and_squared_off(
    engine: Engine, clock: ManualClock
) -> None:
    """3 of 10 filled, the rest resting: at the cut-off the rest is cancelled at the
    broker, the trade opens for 3 and the square-off sells exactly 3."""
    clock.set(at(10, 0))
    world, broker, loop, entry = tms(engine, clock)
    broker.auto_fill = False  # the rest of the entry rests at the broker
    broker.fill_partially_next(3)
    entry.process(world.candidate())
    clock.set(at(12, 0))
    loop.run_once()
    assert [(t.status, t.quantity) for t in rows(engine, Trade)] == [("PENDING_ENTRY", 10)]
    clock.set(at(15, 16))
    loop.run_once()
    [entry_order] = [o for o in rows(engine, Order) if o.purpose == "ENTRY"]
    assert (entry_order.status, entry_order.filled_quantity) == ("CANCELLED", 3)
    assert [(t.status, t.quantity) for t in rows(engine, Trade)] == [("OPEN", 3)]
    assert broker.net_position("INFY") == 3
    broker.auto_fill = True  # the market fills the square-off
    for minute in (17, 18):
        clock.set(at(15, minute))
        loop.on_tick("INFY", Decimal("100"), clock.now())
        loop.run_once()
    assert [(t.status, t.quantity) for t in rows(engine, Trade)] == [("CLOSED", 3)]
    assert [(x.exit_reason, x.quantity) for x in rows(engine, ExitIntent)] == [("TIME", 3)]
    assert broker.net_position("INFY") == 0


def test_an_entry_ttl_cuts_a_partly_filled_entry_and_the_stop_protects_it(
    engine: Engine, clock: ManualClock
) -> None:
    """With ``entry_ttl`` the rest of a partly filled entry is cancelled once the TTL has
    passed, hours before the cut-off, and the stop then exits exactly what filled."""
    clock.set(at(10, 0))
    world, broker, loop, entry = tms(engine, clock, ExitSettings(entry_ttl=timedelta(minutes=5)))
    broker.auto_fill = False
    broker.fill_partially_next(3)
    entry.process(world.candidate())
    clock.set(at(10, 4))
    loop.run_once()
    assert [t.status for t in rows(engine, Trade)] == ["PENDING_ENTRY"]
    clock.set(at(10, 5))
    loop.run_once()
    assert [(t.status, t.quantity) for t in rows(engine, Trade)] == [("OPEN", 3)]
    broker.auto_fill = True
    [trade] = rows(engine, Trade)
    clock.set(at(10, 6))
    broker.set_price("INFY", trade.stop_price)
    loop.on_tick("INFY", trade.stop_price, clock.now())
    loop.run_once()
    assert [(x.exit_reason, x.quantity, x.status) for x in rows(engine, ExitIntent)] == [
        ("STOP_LOSS", 3, "FILLED")
    ]
    assert broker.net_position("INFY") == 0


def test_an_entry_ttl_fails_an_unfilled_entry_with_its_own_reason(
    engine: Engine, clock: ManualClock
) -> None:
    clock.set(at(10, 0))
    world, broker, loop, entry = tms(engine, clock, ExitSettings(entry_ttl=timedelta(minutes=5)))
    broker.auto_fill = False  # the entry rests unfilled
    entry.process(world.candidate())
    clock.set(at(10, 5))
    loop.run_once()
    [intent] = rows(engine, TradeIntent)
    [order] = rows(engine, Order)
    assert (intent.status, order.status, order.filled_quantity) == ("FAILED", "CANCELLED", 0)
    assert event_types(engine)[-2:] == ["TRADE_INTENT_FAILED", "TRADE_ENTRY_FAILED"]
    with engine.connect() as conn:
        payload = conn.execute(
            select(OutboxRow.payload).where(OutboxRow.event_type == "TRADE_ENTRY_FAILED")
        ).scalar_one()
    assert (json.loads(payload) if isinstance(payload, str) else payload)["reason"] == (
        "ENTRY_EXPIRED"
    )
