"""TradeLoop on both backends: from a signal to a closed trade, restart, threads, cut-off."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import date, time, timedelta
from decimal import Decimal

from sqlalchemy import Engine, select

from entry_world import World, at, make_world
from exit_support import rows
from loop_support import start_tms
from signal_mgmt import TradeLoop
from signal_mgmt.demo.invariants import position_violations
from signal_mgmt.entry.coordinator import EntryCoordinator
from signal_mgmt.execution.simulated import SimulatedBroker
from signal_mgmt.exit.settings import ExitSettings
from signal_mgmt.market.calendar import nse_calendar
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import ExitIntent, Order, Trade, TradeIntent


@dataclass
class Desk:
    """A TMS: one world, one simulated broker, the library's loop and entry path."""

    world: World
    broker: SimulatedBroker
    loop: TradeLoop
    entry: EntryCoordinator

    def enter(self, symbol: str = "INFY") -> None:
        self.entry.process(self.world.candidate(symbol))


def desk(
    engine: Engine,
    clock: ManualClock,
    *,
    settings: ExitSettings | None = None,
    users: int = 1,
) -> Desk:
    world = make_world(engine, clock, users=users, tcs_only=False)
    broker = SimulatedBroker({"INFY": Decimal("100"), "TCS": Decimal("100")})
    loop, entry = start_tms(engine, clock, broker, settings)
    return Desk(world, broker, loop, entry)


def trades(engine: Engine) -> list[tuple[str, int, Decimal | None]]:
    with engine.connect() as conn:
        found = conn.execute(select(Trade.status, Trade.quantity, Trade.pnl).order_by(Trade.id))
        return [(status, quantity, pnl) for status, quantity, pnl in found]


def test_an_entry_at_1520_is_rejected_by_the_cutoff_not_carried_overnight(
    engine: Engine, clock: ManualClock
) -> None:
    """Case 6: an entry after the square-off was approved and squared off the next day."""
    clock.set(at(15, 20))
    tms = desk(engine, clock)
    tms.enter()
    tms.loop.run_once()
    [intent] = rows(engine, TradeIntent)
    assert (intent.status, intent.reason_codes) == ("REJECTED", ["ENTRY_CUTOFF"])
    assert rows(engine, Trade) == []


def test_the_cutoff_is_a_setting_and_an_entry_before_it_opens(
    engine: Engine, clock: ManualClock
) -> None:
    clock.set(at(14, 29))
    tms = desk(engine, clock, settings=ExitSettings(entry_cutoff=time(14, 30)))
    tms.enter("INFY")
    clock.set(at(14, 30))
    tms.enter("TCS")
    assert [(i.symbol, i.status, i.reason_codes) for i in rows(engine, TradeIntent)] == [
        ("INFY", "FILLED", []),
        ("TCS", "REJECTED", ["ENTRY_CUTOFF"]),
    ]


def test_a_special_session_cuts_entries_off_before_its_close(
    engine: Engine, clock: ManualClock
) -> None:
    """Muhurat 2025-10-21 (13:45-14:45 IST) does not contain 15:15: the cut-off is 14:30."""
    muhurat = nse_calendar().at_local(date(2025, 10, 21), time(14, 31))
    clock.set(muhurat)
    tms = desk(engine, clock)
    tms.enter()
    [intent] = rows(engine, TradeIntent)
    assert intent.reason_codes == ["ENTRY_CUTOFF"]


def test_one_loop_takes_a_signal_to_a_closed_trade(engine: Engine, clock: ManualClock) -> None:
    clock.set(at(10, 0))
    tms = desk(engine, clock)
    tms.enter()
    first = tms.loop.run_once()
    assert len(first.watched) == 1
    [trade_id] = first.watched
    assert trade_id in tms.loop.monitor
    clock.advance(timedelta(seconds=30))
    tms.broker.set_price("INFY", Decimal("98.90"))
    [fired] = tms.loop.on_tick("INFY", Decimal("98.90"), clock.now())
    assert fired.reason_codes == ()
    done = tms.loop.run_once()
    assert done.closed == (trade_id,)
    assert trade_id not in tms.loop.monitor
    assert trades(engine) == [("CLOSED", 10, Decimal("-11.00"))]


def test_the_square_off_closes_without_a_tick_once_the_loop_runs(
    engine: Engine, clock: ManualClock
) -> None:
    clock.set(at(10, 0))
    tms = desk(engine, clock)
    tms.enter()
    tms.loop.run_once()
    tms.loop.on_tick("INFY", Decimal("100"), clock.now())  # the detector has a price
    clock.set(at(15, 15))
    report = tms.loop.run_once()
    assert [r.reason.value for r in report.time_exits] == ["TIME"]
    assert [status for status, _, _ in trades(engine)] == ["CLOSED"]


def test_stage_b_reads_the_broker_connection_through_the_port(
    engine: Engine, clock: ManualClock
) -> None:
    """The user-broker row still says connected; the gateway says otherwise."""
    clock.set(at(10, 0))
    tms = desk(engine, clock)
    tms.enter()
    tms.loop.run_once()
    tms.broker.disconnect()
    [fired] = tms.loop.on_tick("INFY", Decimal("98.90"), clock.now())
    assert "BROKER_DISCONNECTED" in fired.reason_codes
    assert [status for status, _, _ in trades(engine)] == ["OPEN"]


def test_replay_after_a_crash_finishes_and_closes(engine: Engine, clock: ManualClock) -> None:
    """The crash left an APPROVED exit never dispatched; new instances replay it."""
    clock.set(at(10, 0))
    tms = desk(engine, clock)
    tms.enter()
    tms.loop.run_once()
    tms.loop.on_tick("INFY", Decimal("98.90"), clock.now())
    tms.entry.close()
    assert [i.status for i in rows(engine, ExitIntent)] == ["APPROVED"]

    loop, entry = start_tms(engine, clock, tms.broker)
    restarted = Desk(tms.world, tms.broker, loop, entry)
    report = restarted.loop.replay()
    assert report.watched == 1
    assert [d.status.value for d in report.dispatched] == ["PLACED"]
    assert report.settled.closed == (1,)
    assert len(restarted.loop.monitor) == 0
    assert [status for status, _, _ in trades(engine)] == ["CLOSED"]


def test_ticks_from_several_threads_record_one_exit_per_trade(
    engine: Engine, clock: ManualClock
) -> None:
    clock.set(at(10, 0))
    tms = desk(engine, clock, users=3)
    tms.enter("INFY")
    tms.enter("TCS")
    tms.loop.run_once()
    assert len(tms.loop.monitor) == 6
    start = threading.Barrier(4)
    errors: list[BaseException] = []
    first = clock.now()
    clock.advance(timedelta(seconds=10))  # the ticks below are all in the past

    def feed(symbol: str) -> None:
        start.wait()
        try:
            for n in range(10):
                tms.loop.on_tick(symbol, Decimal("98.90"), first + timedelta(seconds=n))
        except BaseException as error:  # reported to the test thread below
            errors.append(error)

    workers = [threading.Thread(target=feed, args=(s,)) for s in ("INFY", "TCS") * 2]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert sorted(i.exit_reason for i in rows(engine, ExitIntent)) == ["STOP_LOSS"] * 6
    tms.loop.run_once()
    assert [status for status, _, _ in trades(engine)] == ["CLOSED"] * 6
    assert len(tms.loop.monitor) == 0


def test_an_entry_filled_after_the_square_off_is_squared_off_that_day(
    engine: Engine, clock: ManualClock
) -> None:
    """Approved before the cut-off, filled after the square-off: never carried overnight."""
    clock.set(at(15, 14))
    tms = desk(engine, clock)
    tms.broker.auto_fill = False  # the entry order rests at the broker
    tms.enter()
    [(intent_id, status)] = [(i.id, i.status) for i in rows(engine, TradeIntent)]
    assert status == "PLACED"
    clock.set(at(15, 16))
    tms.broker.auto_fill = True
    tms.broker.set_price("INFY", Decimal("100"))  # the resting entry fills now
    tms.loop.on_tick("INFY", Decimal("100"), clock.now())
    opened = tms.loop.run_once()
    assert [r.trade_intent_id for r in opened.entries] == [intent_id]
    clock.advance(timedelta(seconds=1))
    tms.loop.on_tick("INFY", Decimal("100"), clock.now())
    tms.loop.run_once()
    assert [status for status, _, _ in trades(engine)] == ["CLOSED"]


def test_the_demo_position_check_sees_an_exit_larger_than_the_entry(
    engine: Engine, clock: ManualClock
) -> None:
    clock.set(at(10, 0))
    tms = desk(engine, clock)
    tms.enter()
    tms.loop.run_once()
    tms.loop.request_manual_exit(1, clock.now())
    tms.loop.run_once()
    broker_orders = tms.broker.orders
    [exit_id] = [o.client_order_id for o in rows(engine, Order) if o.purpose == "EXIT"]
    doubled = replace(broker_orders[exit_id], quantity=20, filled_quantity=20)
    with engine.connect() as conn:
        assert position_violations(conn, broker_orders) == 0
        assert position_violations(conn, {**broker_orders, exit_id: doubled}) == 1
