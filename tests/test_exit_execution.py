"""Dispatcher, reconciler and TMS close with the SimulatedBroker, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, update

from exit_support import candidate, event_types, rewinding_exit_intents, rows, seed
from signal_mgmt.errors import IllegalTransitionError, InvalidInputError, NotFoundError
from signal_mgmt.execution.exit_dispatcher import ExitIntentDispatcher
from signal_mgmt.execution.exit_reconciler import Reconciler
from signal_mgmt.execution.orders import client_order_id
from signal_mgmt.execution.simulated import SimulatedBroker
from signal_mgmt.exit.service import ExitIntentService, ExitOutcome
from signal_mgmt.exit.settings import ExitSettings
from signal_mgmt.market import ManualClock
from signal_mgmt.models import (
    ExitIntent,
    ExitIntentStatus,
    ExitReason,
    Order,
    OrderPurpose,
    Trade,
    UserBroker,
)
from signal_mgmt.tms.close import TradeCloser

COOLDOWN = timedelta(minutes=5)


class Pipeline:
    def __init__(self, engine: Engine, clock: ManualClock, broker: SimulatedBroker) -> None:
        self.engine, self.clock, self.broker = engine, clock, broker
        self.service = ExitIntentService(engine, clock, settings=ExitSettings(cooldown=COOLDOWN))
        self.dispatcher = ExitIntentDispatcher(
            engine, broker, clock, max_attempts=2, sleep=lambda _: None
        )
        self.reconciler = Reconciler(engine, broker, clock, limit_order_ttl=timedelta(minutes=2))
        self.closer = TradeCloser(engine, clock)

    def run(self) -> None:
        self.dispatcher.dispatch_pending()
        self.reconciler.reconcile_placed()
        self.closer.close_filled()


@pytest.fixture
def broker() -> SimulatedBroker:
    return SimulatedBroker({"INFY": Decimal("94.95"), "NIFTY": Decimal("94.95")})


@pytest.fixture
def pipeline(engine: Engine, clock: ManualClock, broker: SimulatedBroker) -> Pipeline:
    return Pipeline(engine, clock, broker)


def intent_of(engine: Engine, trade_id: int) -> list[object]:
    return rows(engine, ExitIntent, ExitIntent.trade_id == trade_id)


def test_stop_to_closed_trade(engine: Engine, pipeline: Pipeline, broker: SimulatedBroker) -> None:
    trade_id = seed(engine)
    pipeline.service.on_exit_detected(candidate(trade_id))
    [placed] = pipeline.dispatcher.dispatch_pending()
    assert placed.status is ExitIntentStatus.PLACED
    assert [o.client_order_id for o in placed.orders] == [
        client_order_id(OrderPurpose.EXIT, placed.exit_intent_id, 1)
    ]
    [trade] = rows(engine, Trade)
    assert trade.status == "OPEN"  # execution never touches trades
    [reconciled] = pipeline.reconciler.reconcile_placed()
    assert (reconciled.status, reconciled.filled_quantity) == (ExitIntentStatus.FILLED, 10)
    assert rows(engine, Trade)[0].status == "OPEN"  # still TMS's move
    [closed] = pipeline.closer.close_filled()
    assert closed.closed
    [trade] = rows(engine, Trade)
    assert (trade.status, trade.exit_price, trade.pnl) == (
        "CLOSED",
        Decimal("94.95"),
        Decimal("-50.5"),
    )
    again = pipeline.closer.close_for_exit(placed.exit_intent_id)
    assert not again.closed
    assert pipeline.closer.close_filled() == []
    assert event_types(engine) == [
        "EXIT_SIGNAL_PUBLISHED",
        "EXIT_INTENT_APPROVED",
        "EXIT_INTENT_PLACED",
        "EXIT_INTENT_FILLED",
        "TRADE_CLOSED",
    ]
    assert broker.place_calls == 1


def test_short_target_closes_with_positive_pnl(
    engine: Engine, pipeline: Pipeline, broker: SimulatedBroker
) -> None:
    trade_id = seed(engine, direction="SHORT", entry="100", target="90", stop="105")
    broker.set_price("INFY", Decimal("89.50"))
    pipeline.service.on_exit_detected(candidate(trade_id, ExitReason.TARGET, price="89.50"))
    pipeline.run()
    [trade] = rows(engine, Trade)
    assert (trade.status, trade.exit_price, trade.pnl) == (
        "CLOSED",
        Decimal("89.5"),
        Decimal("105"),
    )


def test_freeze_quantity_slices_are_placed_and_filled(
    engine: Engine, pipeline: Pipeline, broker: SimulatedBroker
) -> None:
    trade_id = seed(engine, symbol="NIFTY", quantity=1900, lot=50, freeze=900)
    pipeline.service.on_exit_detected(candidate(trade_id))
    pipeline.run()
    orders = rows(engine, Order)
    assert [(o.slice_no, o.quantity, o.status) for o in orders] == [
        (1, 900, "FILLED"),
        (2, 900, "FILLED"),
        (3, 100, "FILLED"),
    ]
    [intent] = intent_of(engine, trade_id)
    assert (intent.status, intent.filled_quantity) == ("FILLED", 1900)  # type: ignore[attr-defined]
    assert rows(engine, Trade)[0].status == "CLOSED"


def test_broker_outage_fails_the_exit_and_a_later_episode_retries(
    engine: Engine, pipeline: Pipeline, broker: SimulatedBroker, clock: ManualClock
) -> None:
    trade_id = seed(engine)
    pipeline.service.on_exit_detected(candidate(trade_id))
    broker.disconnect()
    [failed] = pipeline.dispatcher.dispatch_pending()
    assert failed.status is ExitIntentStatus.FAILED
    assert intent_of(engine, trade_id)[0].failure_reason == "BROKER_DISCONNECTED"  # type: ignore[attr-defined]
    assert rows(engine, Trade)[0].status == "OPEN"
    assert broker.orders == {}
    broker.connect()
    clock.advance(COOLDOWN)
    retry = pipeline.service.on_exit_detected(candidate(trade_id, at=clock.now()))
    assert (retry.outcome, retry.episode_id) == (ExitOutcome.APPROVED, 2)
    pipeline.run()
    assert rows(engine, Trade)[0].status == "CLOSED"


def test_a_definite_rejection_fails_the_exit(
    engine: Engine, pipeline: Pipeline, broker: SimulatedBroker
) -> None:
    trade_id = seed(engine)
    pipeline.service.on_exit_detected(candidate(trade_id))
    broker.reject_next("MARGIN_SHORTFALL")
    [result] = pipeline.dispatcher.dispatch_pending()
    assert result.status is ExitIntentStatus.FAILED
    assert intent_of(engine, trade_id)[0].failure_reason == "MARGIN_SHORTFALL"  # type: ignore[attr-defined]
    assert broker.place_calls == 1
    assert rows(engine, Trade)[0].status == "OPEN"


@pytest.mark.parametrize("reached_broker", [True, False])
def test_an_unknown_outcome_is_reconciled_never_placed_twice(
    engine: Engine,
    pipeline: Pipeline,
    broker: SimulatedBroker,
    clock: ManualClock,
    reached_broker: bool,
) -> None:
    trade_id = seed(engine)
    pipeline.service.on_exit_detected(candidate(trade_id))
    broker.time_out_next(reached_broker=reached_broker)
    dispatcher = ExitIntentDispatcher(engine, broker, clock, max_attempts=1, sleep=lambda _: None)
    [first] = dispatcher.dispatch_pending()
    assert first.status is ExitIntentStatus.APPROVED  # unknown: stays reconcilable
    assert [o.status.value for o in first.orders] == ["UNKNOWN"]
    assert dispatcher.dispatch_pending() == []  # leased
    clock.advance(timedelta(seconds=31))
    [second] = dispatcher.dispatch_pending()
    assert second.status is ExitIntentStatus.PLACED
    assert len(broker.orders) == 1
    assert broker.place_calls == (1 if reached_broker else 2)
    pipeline.run()
    assert rows(engine, Trade)[0].status == "CLOSED"
    assert len(rows(engine, Order)) == 1


def test_partial_fills_are_tracked_then_completed(
    engine: Engine, pipeline: Pipeline, broker: SimulatedBroker
) -> None:
    trade_id = seed(engine)
    pipeline.service.on_exit_detected(candidate(trade_id))
    broker.fill_partially_next(4)
    [placed] = pipeline.dispatcher.dispatch_pending()
    [partial] = pipeline.reconciler.reconcile_placed()
    assert (partial.status, partial.filled_quantity) == (ExitIntentStatus.PLACED, 4)
    assert intent_of(engine, trade_id)[0].filled_quantity == 4  # type: ignore[attr-defined]
    broker.fill(client_order_id(OrderPurpose.EXIT, placed.exit_intent_id), price=Decimal("94"))
    [done] = pipeline.reconciler.reconcile_placed()
    assert done.status is ExitIntentStatus.FILLED
    assert done.average_fill_price == Decimal("94.38")  # (4 x 94.95 + 6 x 94) / 10
    pipeline.closer.close_filled()
    [trade] = rows(engine, Trade)
    assert trade.pnl == Decimal("-56.2")  # 4 x -5.05 + 6 x -6


def test_a_resting_target_is_cancelled_and_a_partial_exit_counts_at_close(
    engine: Engine, pipeline: Pipeline, broker: SimulatedBroker, clock: ManualClock
) -> None:
    trade_id = seed(engine)
    broker.set_price("INFY", Decimal("110"))
    broker.fill_partially_next(4)
    pipeline.service.on_exit_detected(candidate(trade_id, ExitReason.TARGET, price="110"))
    pipeline.dispatcher.dispatch_pending()
    broker.set_price("INFY", Decimal("100"))  # the rest of the limit sell rests
    assert pipeline.reconciler.reconcile_placed()[0].status is ExitIntentStatus.PLACED
    clock.advance(timedelta(minutes=2))
    [expired] = pipeline.reconciler.reconcile_placed()
    assert (expired.status, expired.filled_quantity) == (ExitIntentStatus.FAILED, 4)
    assert rows(engine, Trade)[0].status == "OPEN"
    broker.set_price("INFY", Decimal("94"))
    stop = pipeline.service.on_exit_detected(candidate(trade_id, price="94"))
    assert stop.outcome is ExitOutcome.APPROVED
    assert intent_of(engine, trade_id)[1].quantity == 6  # type: ignore[attr-defined]
    pipeline.run()
    [trade] = rows(engine, Trade)
    assert (trade.status, trade.exit_price, trade.pnl) == ("CLOSED", Decimal("100.4"), Decimal("4"))


def test_closing_needs_a_filled_exit(engine: Engine, pipeline: Pipeline) -> None:
    with pytest.raises(NotFoundError):
        pipeline.closer.close_for_exit(12345)
    trade_id = seed(engine)
    result = pipeline.service.on_exit_detected(candidate(trade_id))
    assert result.exit_intent_id is not None
    with pytest.raises(IllegalTransitionError):
        pipeline.closer.close_for_exit(result.exit_intent_id)
    assert rows(engine, Trade)[0].status == "OPEN"


def test_replay_finishes_approved_and_placed_intents_once(
    engine: Engine, broker: SimulatedBroker, clock: ManualClock
) -> None:
    approved, placed = seed(engine), seed(engine)
    first = Pipeline(engine, clock, broker)
    first.service.on_exit_detected(candidate(approved))
    first.service.on_exit_detected(candidate(placed))
    broker.auto_fill = False
    first.dispatcher.dispatch_pending()  # both PLACED, resting at the broker
    # as if the first had crashed before dispatching one
    with engine.begin() as conn, rewinding_exit_intents(conn):
        conn.execute(
            update(ExitIntent)
            .where(ExitIntent.trade_id == approved)
            .values(status="APPROVED", claimed_until=None)
        )
    for client_id in broker.orders:
        broker.fill(client_id)
    restarted = Pipeline(engine, clock, broker)
    for _ in range(2):
        restarted.run()
    assert {t.status for t in rows(engine, Trade)} == {"CLOSED"}
    assert broker.place_calls == 2
    assert event_types(engine).count("TRADE_CLOSED") == 2


def test_broker_disabled_rejects_at_qualification(engine: Engine, pipeline: Pipeline) -> None:
    trade_id = seed(engine)
    with engine.begin() as conn:
        conn.execute(update(UserBroker).values(enabled=False))
    result = pipeline.service.on_exit_detected(candidate(trade_id))
    assert result.reason_codes == ("BROKER_DISABLED",)
    assert pipeline.dispatcher.dispatch_pending() == []


def test_bad_worker_settings_are_typed_errors(
    engine: Engine, broker: SimulatedBroker, clock: ManualClock
) -> None:
    with pytest.raises(InvalidInputError):
        ExitIntentDispatcher(engine, broker, clock, batch_size=0)
    with pytest.raises(InvalidInputError):
        ExitIntentDispatcher(engine, broker, clock, lease=timedelta(0))
    with pytest.raises(InvalidInputError):
        Reconciler(engine, broker, clock, batch_size=0)
