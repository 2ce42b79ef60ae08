"""The whole position lifecycle as a Hypothesis state machine, on SQLite and PostgreSQL.

A TMS runs the library's ``TradeLoop`` against a simulated broker while the world misbehaves:
random tick paths, partial fills, rejections, unknown outcomes, a market that rests orders,
cancels that lose the race to a fill, broker outages, process restarts (new service instances
and ``TradeLoop.replay``, also half way through a pass) and a TMS that closes trades late or
never. A fresh database per example.

The oracle is the broker's net position per trade plus the rows:

- after every step, no trade's exit fills exceed its entry fills at the broker (the position
  never changes sign nor outgrows the entry), and its exits live or FILLED never add up to
  more than its quantity (``demo.invariants.position_violations``);
- once the square-off has passed and the loop has run, every trade that was entered is
  CLOSED, flat at the broker, with P&L booked on exactly its quantity from the broker's fills.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import date, time, timedelta
from decimal import Decimal

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, select

from conftest import Backend
from entry_world import World, make_world
from loop_support import start_tms
from signal_mgmt.demo.invariants import position_violations
from signal_mgmt.execution.simulated import SimulatedBroker
from signal_mgmt.exit.settings import ExitSettings
from signal_mgmt.market.calendar import nse_calendar
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import Direction, Order, OrderPurpose, Trade, TradeStatus
from signal_mgmt.storage.db import make_engine
from signal_mgmt.tms.close import realized_pnl

DAY = date(2026, 11, 25)
CALENDAR = nse_calendar()
OPENING = CALENDAR.at_local(DAY, time(9, 30))
QUIET_AFTER = CALENDAR.at_local(DAY, time(15, 5))
"""The random phase ends before the square-off (15:15) and the close (15:30)."""
SQUARED_OFF = CALENDAR.at_local(DAY, time(15, 16))
SYMBOLS = ("INFY", "TCS")
SYMBOL = st.sampled_from(SYMBOLS)
DIRECTION = st.sampled_from(list(Direction))
START_PRICE = Decimal("100")
FAULTS = (
    "reject",
    "time out",
    "fill in part",
    "go down",
    "come back",
    "rest orders",
    "fill orders",
    "a cancel loses to a fill",
    "a resting order fills",
)
SETTINGS = ExitSettings(cooldown=timedelta(seconds=30), reemit_interval=timedelta(0))
FINAL_PASSES = 20


class PositionMachine(RuleBasedStateMachine):
    new_database: Callable[[], tuple[str, Callable[[], None]]]

    def __init__(self) -> None:
        super().__init__()
        url, self._drop = self.new_database()
        self.url = url
        self.clock = ManualClock(OPENING)
        self.broker = SimulatedBroker(dict.fromkeys(SYMBOLS, START_PRICE))
        self.prices = dict.fromkeys(SYMBOLS, START_PRICE)
        self.engine = make_engine(url)
        self.world: World = make_world(self.engine, self.clock, users=2, tcs_only=False)
        self.loop, self.entry = start_tms(self.engine, self.clock, self.broker, SETTINGS)
        self.signals = 0
        self.tms_late = False

    # ------------------------------------------------------------------ the market

    @rule(
        symbol=SYMBOL,
        ticks=st.integers(-30, 30),
        seconds=st.integers(1, 90),
    )
    def price_moves(self, symbol: str, ticks: int, seconds: int) -> None:
        self._advance(timedelta(seconds=seconds))
        price = max(Decimal("50"), self.prices[symbol] + ticks * Decimal("0.10"))
        self._tick(symbol, price)

    @rule(minutes=st.integers(1, 45))
    def time_passes(self, minutes: int) -> None:
        self._advance(timedelta(minutes=minutes))

    @initialize(breakouts=st.lists(st.tuples(SYMBOL, DIRECTION), min_size=1, max_size=3))
    def the_day_starts_with_breakouts(self, breakouts: list[tuple[str, Direction]]) -> None:
        for symbol, direction in breakouts:
            self.a_breakout_is_entered(symbol, direction)
        self._run()

    @rule(symbol=SYMBOL, direction=DIRECTION)
    def a_breakout_is_entered(self, symbol: str, direction: Direction) -> None:
        price = self.prices[symbol]
        low, high = (price - 1, price) if direction is Direction.LONG else (price, price + 1)
        self.signals += 1
        candidate = self.world.candidate(
            symbol,
            direction=direction.value,
            confluence_type=f"C{self.signals}",
            detected_at=self.clock.now() - timedelta(seconds=1),
            effective_floor=low,
            effective_ceiling=high,
        )
        self.entry.process(candidate)

    # ------------------------------------------------------------------ the broker misbehaves

    @rule(fault=st.sampled_from(FAULTS), data=st.data())
    def the_broker_misbehaves(self, fault: str, data: st.DataObject) -> None:
        broker = self.broker
        if fault == "reject":
            broker.reject_next()
        elif fault == "time out":
            broker.time_out_next(reached_broker=data.draw(st.booleans(), "reached"))
        elif fault == "fill in part":
            broker.fill_partially_next(data.draw(st.integers(1, 9), "quantity"))
        elif fault == "go down":
            broker.disconnect()
        elif fault == "come back":
            broker.connect()
        elif fault == "rest orders":
            broker.auto_fill = False
        elif fault == "fill orders":
            broker.auto_fill = True
        elif fault == "a cancel loses to a fill":
            won = data.draw(st.none() | st.integers(1, 9), "filled first")
            broker.fill_before_next_cancel(won)
        else:
            working = sorted(cid for cid, order in broker.orders.items() if not order.is_final)
            if working:
                broker.fill(data.draw(st.sampled_from(working), "resting order"))

    # ------------------------------------------------------------------ the TMS

    @rule()
    def the_loop_runs(self) -> None:
        self._run(close=not self.tms_late)

    @rule(late=st.booleans())
    def the_tms_falls_behind_or_catches_up(self, late: bool) -> None:
        """Late: TMS has not consumed EXIT_INTENT_FILLED yet, so FILLED trades stay OPEN."""
        self.tms_late = late

    @rule(data=st.data())
    def a_desk_exits_a_trade(self, data: st.DataObject) -> None:
        watched = [t for t in self._open_trades() if t in self.loop.monitor]
        if watched:
            self.loop.request_manual_exit(data.draw(st.sampled_from(watched)), self.clock.now())

    @rule(steps=st.integers(1, 4))
    def the_process_dies_mid_pass(self, steps: int) -> None:
        """The first ``steps`` steps of a pass run, then the process is gone."""
        loop = self.loop
        for step in (
            loop.opener.open_pending,
            loop.dispatcher.dispatch_pending,
            loop.reconciler.reconcile_placed,
            loop.exits.replay,
        )[:steps]:
            step()
        self.the_process_restarts()

    @rule()
    def the_process_restarts(self) -> None:
        self.entry.close()
        self.engine.dispose()
        self.engine = make_engine(self.url)
        self.loop, self.entry = start_tms(self.engine, self.clock, self.broker, SETTINGS)
        assert self.loop.replay().settled.failures == ()

    # ------------------------------------------------------------------ the oracle

    @invariant()
    def no_position_changes_sign_or_outgrows_its_entry(self) -> None:
        with self.engine.connect() as conn:
            broken = position_violations(conn, self.broker.orders)
        assert broken == 0, self._positions()

    def teardown(self) -> None:
        try:
            self._square_off()
            self._every_entered_trade_is_closed_flat_on_its_quantity()
        finally:
            self.entry.close()
            self.engine.dispose()
            self._drop()

    def _square_off(self) -> None:
        """The outage and the resting market end (faults already scripted still happen);
        the square-off passes (entries still resting fill after it) and the loop runs."""
        self.broker.connect()
        self.broker.auto_fill = True
        if self.clock.now() < SQUARED_OFF:
            self.clock.set(SQUARED_OFF)
        for _ in range(FINAL_PASSES):
            self.clock.advance(timedelta(minutes=1))  # leases and cooldowns run out
            self._pass_with_ticks()
            if not self._open_trades(TradeStatus.OPEN, TradeStatus.PENDING_ENTRY):
                return

    def _every_entered_trade_is_closed_flat_on_its_quantity(self) -> None:
        fills = self._broker_fills()
        with self.engine.connect() as conn:
            trades = conn.execute(select(Trade.__table__).order_by(Trade.id)).all()
        for trade in trades:
            entered = sum(q for q, _ in fills[trade.id, OrderPurpose.ENTRY])
            if entered == 0:
                assert trade.status != TradeStatus.OPEN, trade
                continue
            exits = fills[trade.id, OrderPurpose.EXIT]
            assert trade.status == TradeStatus.CLOSED, (trade, self._positions())
            assert sum(q for q, _ in exits) == entered == trade.quantity, self._positions()
            direction = Direction(trade.direction)
            assert trade.pnl == realized_pnl(direction, trade.entry_price, exits), trade

    # ------------------------------------------------------------------ helpers

    def _advance(self, step: timedelta) -> None:
        self.clock.set(min(self.clock.now() + step, QUIET_AFTER))

    def _tick(self, symbol: str, price: Decimal) -> None:
        self.prices[symbol] = price
        self.broker.set_price(symbol, price)
        self.loop.on_tick(symbol, price, self.clock.now())

    def _pass_with_ticks(self) -> None:
        for symbol in SYMBOLS:
            self._tick(symbol, self.prices[symbol])
        self._run()

    def _run(self, *, close: bool = True) -> None:
        """One pass; the loop isolates failures instead of raising, so none is allowed."""
        assert self.loop.run_once(close=close).failures == ()

    def _open_trades(self, *statuses: TradeStatus) -> list[int]:
        wanted = [s.value for s in statuses or (TradeStatus.OPEN,)]
        with self.engine.connect() as conn:
            found = conn.execute(select(Trade.id).where(Trade.status.in_(wanted)))
            return list(found.scalars())

    def _broker_fills(self) -> defaultdict[tuple[int, OrderPurpose], list[tuple[int, Decimal]]]:
        """(quantity, price) the broker filled, per trade and purpose."""
        broker_orders = self.broker.orders
        fills: defaultdict[tuple[int, OrderPurpose], list[tuple[int, Decimal]]]
        fills = defaultdict(list)
        with self.engine.connect() as conn:
            orders = conn.execute(
                select(Order.trade_id, Order.purpose, Order.client_order_id).order_by(Order.id)
            ).all()
        for trade_id, purpose, client_order_id in orders:
            order = broker_orders.get(client_order_id)
            if order is not None and order.filled_quantity > 0:
                assert order.average_price is not None
                fill = (order.filled_quantity, order.average_price)
                fills[trade_id, OrderPurpose(purpose)].append(fill)
        return fills

    def _positions(self) -> dict[int, dict[str, int]]:
        """Per trade: entry and exit quantity filled at the broker (for failure messages)."""
        net: dict[int, Counter[str]] = {}
        for (trade_id, purpose), fills in self._broker_fills().items():
            net.setdefault(trade_id, Counter())[purpose.value] += sum(q for q, _ in fills)
        return {trade_id: dict(counts) for trade_id, counts in net.items()}


def test_position_lifecycle_state_machine(
    backend: Backend, database_url: str, emptied_engine: Callable[[], Engine]
) -> None:
    def new_database() -> tuple[str, Callable[[], None]]:
        emptied_engine()  # each example starts on the test's database, emptied
        return database_url, lambda: None  # the fixture drops it after the last example

    machine = type(
        f"PositionMachine_{backend.name}",
        (PositionMachine,),
        {"new_database": staticmethod(new_database)},
    )
    run_state_machine_as_test(machine, settings=settings(stateful_step_count=30))
