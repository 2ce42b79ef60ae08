"""Hypothesis over the database (SQLite and PostgreSQL): one live exit per trade on any
tick path, cooldown across service instances, exactly-once close with the right P&L."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from entry_support import AT
from exit_support import candidate, event_types, rows, seed
from signal_mgmt.execution.exit_dispatcher import ExitIntentDispatcher
from signal_mgmt.execution.exit_reconciler import Reconciler
from signal_mgmt.execution.orders import client_order_id
from signal_mgmt.execution.simulated import SimulatedBroker
from signal_mgmt.exit.candidate import ExitCleared
from signal_mgmt.exit.conditions import StopLoss, Target, TrailingStop
from signal_mgmt.exit.detector import ExitDetector
from signal_mgmt.exit.service import ExitIntentService, ExitOutcome
from signal_mgmt.exit.settings import ExitSettings
from signal_mgmt.exit.store import rebuild_detector, save_water_marks
from signal_mgmt.market import ManualClock
from signal_mgmt.models import LIVE_EXIT_STATUSES, ExitIntent, ExitReason, OrderPurpose, Trade
from signal_mgmt.tms.close import TradeCloser

FreshEngine = Callable[[], AbstractContextManager[Engine]]
COOLDOWN = timedelta(seconds=120)


@pytest.fixture
def fresh_engine(emptied_engine: Callable[[], Engine]) -> FreshEngine:
    """The test's database, emptied per Hypothesis example."""
    return lambda: nullcontext(emptied_engine())


def live_exits_per_trade(engine: Engine) -> dict[int, int]:
    with engine.connect() as conn:
        found = conn.execute(
            select(ExitIntent.trade_id, func.count())
            .where(ExitIntent.status.in_(LIVE_EXIT_STATUSES))
            .group_by(ExitIntent.trade_id)
        )
        return dict(found.tuples().all())


on_tick = st.integers(min_value=1800, max_value=2200).map(lambda n: Decimal(n) / 20)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), on_tick),
        st.tuples(st.just("wait"), st.integers(min_value=1, max_value=200).map(Decimal)),
        st.tuples(st.just("execute"), st.just(Decimal(0))),
        st.tuples(st.just("restart"), st.just(Decimal(0))),
        st.tuples(st.just("outage"), st.just(Decimal(0))),
    ),
    min_size=1,
    max_size=30,
)


@given(
    trades=st.lists(st.sampled_from(["LONG", "SHORT"]), min_size=1, max_size=4),
    path=steps,
)
def test_any_tick_path_yields_at_most_one_live_exit_per_trade(
    fresh_engine: FreshEngine, trades: list[str], path: list[tuple[str, Decimal]]
) -> None:
    clock = ManualClock(AT)
    with fresh_engine() as engine:
        for direction in trades:
            target, stop = ("102", "98") if direction == "LONG" else ("98", "102")
            seed(engine, direction=direction, target=target, stop=stop)
        settings = ExitSettings(cooldown=COOLDOWN, reemit_interval=timedelta(seconds=30))
        condition = Target() | StopLoss() | TrailingStop(Decimal("1"))

        def start() -> tuple[ExitDetector, ExitIntentService]:
            detector = ExitDetector(condition, reemit_interval=settings.reemit_interval)
            rebuild_detector(detector, engine)
            return detector, ExitIntentService(engine, clock, settings=settings)

        detector, service = start()
        broker = SimulatedBroker({"INFY": Decimal(100)})
        dispatcher = ExitIntentDispatcher(engine, broker, clock, sleep=lambda _: None)
        reconciler = Reconciler(engine, broker, clock)
        closer = TradeCloser(engine, clock)
        for kind, value in path:
            if kind == "tick":
                broker.set_price("INFY", value)
                outcome = detector.on_tick("INFY", value, clock.now())
                save_water_marks(engine, outcome.water_marks, clock)
                for cleared in outcome.cleared:
                    service.on_exit_cleared(cleared)
                for found in outcome.candidates:
                    service.on_exit_detected(found)
            elif kind == "wait":
                clock.advance(timedelta(seconds=int(value)))
            elif kind == "execute":
                dispatcher.dispatch_pending()
                reconciler.reconcile_placed()
                for closed in closer.close_filled():
                    detector.remove_trade(closed.trade_id)
            elif kind == "restart":
                detector, service = start()
            else:
                (broker.connect if not broker.is_connected() else broker.disconnect)()
            assert all(count == 1 for count in live_exits_per_trade(engine).values())
        for trade in rows(engine, Trade):
            if trade.status == "CLOSED":
                assert event_types(engine).count("TRADE_CLOSED") >= 1


@given(
    path=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=300),  # seconds to wait
            st.booleans(),  # a new service instance (a restart)
            st.booleans(),  # the condition clears before it is seen again
        ),
        min_size=1,
        max_size=12,
    )
)
def test_cooldown_holds_across_a_new_service_instance(
    engine: Engine, path: list[tuple[int, bool, bool]]
) -> None:
    clock = ManualClock(AT)
    trade_id = seed(engine)
    settings = ExitSettings(cooldown=COOLDOWN)
    service = ExitIntentService(engine, clock, settings=settings)
    fired_at = None
    armed = False
    episode = 0
    for wait, restart, clears in path:
        clock.advance(timedelta(seconds=wait))
        if restart:
            service = ExitIntentService(engine, clock, settings=settings)
        now = clock.now()
        if clears:
            cleared = ExitCleared(trade_id=trade_id, reason=ExitReason.STOP_LOSS, cleared_at=now)
            service.on_exit_cleared(cleared)
            armed = armed or (fired_at is not None and fired_at < now)
        result = service.on_exit_detected(candidate(trade_id, at=now))
        fires = fired_at is None or armed or now >= fired_at + COOLDOWN
        assert (result.outcome is not ExitOutcome.SUPPRESSED) == fires
        if fires:
            episode, fired_at, armed = episode + 1, now, False
        assert result.episode_id == episode


fill_paths = st.lists(
    st.tuples(
        st.sampled_from(["LONG", "SHORT"]),
        st.integers(min_value=1, max_value=60),  # quantity
        st.integers(min_value=1600, max_value=2400).map(lambda n: Decimal(n) / 20),  # entry
        st.integers(min_value=1600, max_value=2400).map(lambda n: Decimal(n) / 20),  # 1st fill
        st.integers(min_value=1600, max_value=2400).map(lambda n: Decimal(n) / 20),  # 2nd fill
        st.integers(min_value=0, max_value=60),  # filled at the first price
    ),
    min_size=1,
    max_size=4,
)


@given(trades=fill_paths)
def test_every_filled_exit_closes_its_trade_once_with_the_right_pnl(
    fresh_engine: FreshEngine,
    trades: list[tuple[str, int, Decimal, Decimal, Decimal, int]],
) -> None:
    clock = ManualClock(AT)
    with fresh_engine() as engine:
        broker = SimulatedBroker()
        service = ExitIntentService(engine, clock)
        dispatcher = ExitIntentDispatcher(engine, broker, clock, sleep=lambda _: None)
        reconciler = Reconciler(engine, broker, clock)
        closer = TradeCloser(engine, clock)
        expected: dict[int, Decimal] = {}
        for i, (direction, quantity, entry, first, second, at_first) in enumerate(trades):
            symbol = f"S{i}"
            trade_id = seed(
                engine,
                symbol=symbol,
                direction=direction,
                quantity=quantity,
                entry=str(entry),
                target="500" if direction == "LONG" else "1",
                stop="1" if direction == "LONG" else "500",
            )
            part = min(at_first, quantity)
            broker.set_price(symbol, first)
            if part < quantity:
                broker.fill_partially_next(part)
            exit_ = service.on_exit_detected(candidate(trade_id, ExitReason.MANUAL, str(first)))
            assert exit_.outcome is ExitOutcome.APPROVED
            dispatcher.dispatch_pending()
            if part < quantity:
                reconciler.reconcile_placed()
                assert exit_.exit_intent_id is not None
                broker.fill(client_order_id(OrderPurpose.EXIT, exit_.exit_intent_id), price=second)
            sign = 1 if direction == "LONG" else -1
            order = broker.orders[client_order_id(OrderPurpose.EXIT, exit_.exit_intent_id or 0)]
            assert order.average_price is not None
            # What the broker reports; exact whenever one price filled it all.
            expected[trade_id] = sign * (order.average_price - entry) * quantity
            if part in {0, quantity} or first == second:
                price = first if part == quantity else second
                assert expected[trade_id] == sign * (price - entry) * quantity
        for _ in range(2):
            reconciler.reconcile_placed()
            closer.close_filled()
        closed = {t.id: t for t in rows(engine, Trade)}
        assert {t.status for t in closed.values()} == {"CLOSED"}
        assert {trade_id: closed[trade_id].pnl for trade_id in expected} == expected
        assert event_types(engine).count("TRADE_CLOSED") == len(trades)
