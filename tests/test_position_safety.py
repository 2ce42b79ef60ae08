"""Issue 11, cases 1-5 and 7: a trade is never exited twice, a stop is never blocked by a
resting target, stale input never fires, manual exits work off the tick, levels round
the safe way, and prices leave in one plain form (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from entry_support import AT
from exit_support import candidate, counts, event_types, rows, seed
from signal_mgmt.errors import IllegalTransitionError, InvalidInputError
from signal_mgmt.execution.broker import BrokerGateway, BrokerOrder, OrderRequest, PlaceResult
from signal_mgmt.execution.exit_dispatcher import ExitIntentDispatcher
from signal_mgmt.execution.exit_reconciler import Reconciler
from signal_mgmt.execution.simulated import SimulatedBroker
from signal_mgmt.exit.candidate import ExitCleared
from signal_mgmt.exit.detector import ExitDetector
from signal_mgmt.exit.monitor import ExitMonitor
from signal_mgmt.exit.service import ExitIntentService, ExitOutcome
from signal_mgmt.exit.settings import ExitSettings
from signal_mgmt.market import ManualClock, nse_calendar
from signal_mgmt.models import (
    Direction,
    ExitBudget,
    ExitIntent,
    ExitIntentStatus,
    ExitReason,
    ExitSignal,
    OutboxRow,
    Trade,
    TradeStatus,
    UserBroker,
)
from signal_mgmt.qualification.levels import Levels
from signal_mgmt.storage.db import make_engine
from signal_mgmt.tms.close import TradeCloser
from signal_mgmt.tms.loop import TradeLoop

COOLDOWN = timedelta(minutes=1)
TICK = Decimal("0.05")


@dataclass
class RecordingBroker:
    """A SimulatedBroker that keeps every request it was sent (the wire, as a broker sees it)."""

    inner: SimulatedBroker
    sent: list[OrderRequest] = field(default_factory=list)

    def place(self, request: OrderRequest) -> PlaceResult:
        self.sent.append(request)
        return self.inner.place(request)

    def cancel(self, client_order_id: str) -> BrokerOrder | None:
        return self.inner.cancel(client_order_id)

    def order_status(self, client_order_id: str) -> BrokerOrder | None:
        return self.inner.order_status(client_order_id)

    def is_connected(self) -> bool:
        return self.inner.is_connected()


class Desk:
    """The exit path wired as a host runs it, with the simulated broker at a price."""

    def __init__(self, engine: Engine, clock: ManualClock, price: str = "100") -> None:
        self.engine, self.clock = engine, clock
        self.market = SimulatedBroker({"INFY": Decimal(price)})
        self.broker = RecordingBroker(self.market)
        self.service = ExitIntentService(engine, clock, settings=ExitSettings(cooldown=COOLDOWN))
        self.dispatcher = ExitIntentDispatcher(engine, self.broker, clock, sleep=lambda _: None)
        self.reconciler = Reconciler(engine, self.broker, clock)
        self.closer = TradeCloser(engine, clock)
        self.trade = seed(engine)  # LONG 10 INFY, entry 100, target 110, stop 95

    def detect(self, reason: ExitReason, price: str) -> Any:
        self.clock.advance(COOLDOWN)  # a later tick, past the cooldown
        return self.service.on_exit_detected(candidate(self.trade, reason, price, self.clock.now()))

    def execute(self) -> None:
        """One pass without the close: dispatch, reconcile, finish waiting signals, dispatch."""
        self.dispatcher.dispatch_pending()
        self.reconciler.reconcile_placed()
        self.service.replay()
        self.dispatcher.dispatch_pending()
        self.reconciler.reconcile_placed()


@pytest.fixture
def desk(engine: Engine, clock: ManualClock) -> Desk:
    return Desk(engine, clock)


def intents(engine: Engine) -> list[Any]:
    return rows(engine, ExitIntent)


# ---------------------------------------------------------------- case 1: double exit


def test_a_filled_exit_blocks_a_second_one_until_the_trade_closes(desk: Desk) -> None:
    desk.market.set_price("INFY", Decimal("94.9"))
    assert desk.detect(ExitReason.STOP_LOSS, "94.9").outcome is ExitOutcome.APPROVED
    desk.execute()
    assert [i.status for i in intents(desk.engine)] == [ExitIntentStatus.FILLED]
    # TMS has not closed the trade yet (it will on EXIT_INTENT_FILLED): the next ticks.
    again = desk.detect(ExitReason.STOP_LOSS, "94.5")
    assert again.outcome is ExitOutcome.REJECTED
    assert "EXIT_ALREADY_FILLED" in again.reason_codes
    manual = desk.detect(ExitReason.MANUAL, "94.5")
    assert "EXIT_ALREADY_FILLED" in manual.reason_codes
    desk.execute()
    assert desk.market.net_position("INFY") == -10  # sold once, never short
    [closed] = desk.closer.close_filled()
    assert (closed.exit_price, closed.pnl) == (Decimal("94.9"), Decimal("-51"))


def test_the_database_refuses_an_exit_beyond_the_entry(desk: Desk) -> None:
    desk.detect(ExitReason.STOP_LOSS, "94.95")
    desk.execute()
    [filled] = intents(desk.engine)
    assert filled.status is ExitIntentStatus.FILLED
    rejected = desk.detect(ExitReason.MANUAL, "94.95")
    assert rejected.outcome is ExitOutcome.REJECTED
    with desk.engine.connect() as conn:
        budget = conn.execute(select(ExitBudget)).one()
    assert (budget.entry_quantity, budget.committed_quantity) == (10, 10)
    # Whoever writes: a row that would exit one more unit fails in the database.
    with pytest.raises(IntegrityError), desk.engine.begin() as conn:
        conn.execute(
            update(ExitIntent)
            .where(ExitIntent.id == rejected.exit_intent_id)
            .values(status=ExitIntentStatus.APPROVED, quantity=1)
        )
    signal = rows(desk.engine, ExitSignal)[-1]
    clone = {c.name: getattr(filled, c.name) for c in ExitIntent.__table__.c if c.name != "id"}
    clone.update(exit_signal_id=signal.id, episode_id=99, quantity=1)
    with pytest.raises(IntegrityError), desk.engine.begin() as conn:
        conn.execute(insert(ExitIntent).values(clone))  # a second FILLED exit
    assert [i.status for i in intents(desk.engine)] == [
        ExitIntentStatus.FILLED,
        ExitIntentStatus.REJECTED,
    ]
    # Nor can the entry shrink under what its exits already hold.
    with pytest.raises(IntegrityError), desk.engine.begin() as conn:
        conn.execute(update(Trade).values(quantity=9))


def test_the_budget_follows_a_partial_exit_and_the_rest(desk: Desk) -> None:
    desk.market.auto_fill = False
    desk.detect(ExitReason.STOP_LOSS, "94.95")
    desk.dispatcher.dispatch_pending()
    [order] = desk.market.orders
    desk.market.fill(order, Decimal("94.95"), quantity=3)
    desk.market.cancel(order)
    desk.reconciler.reconcile_placed()
    [failed] = intents(desk.engine)
    assert (failed.status, failed.filled_quantity) == (ExitIntentStatus.FAILED, 3)
    desk.market.auto_fill = True
    rest = desk.detect(ExitReason.STOP_LOSS, "94.9")
    assert rest.outcome is ExitOutcome.APPROVED
    assert intents(desk.engine)[-1].quantity == 7
    desk.execute()
    assert desk.market.net_position("INFY") == -10
    with desk.engine.connect() as conn:
        assert conn.execute(select(ExitBudget.committed_quantity)).scalar_one() == 10


BYPASSES = {
    "budget deleted": ["DELETE FROM exit_budgets"],
    "counter reset": ["UPDATE exit_budgets SET committed_quantity = 0"],
    "budget entry raised": ["UPDATE exit_budgets SET entry_quantity = 20"],
    "trade quantity raised": ["UPDATE trades SET quantity = 20"],
    "filled exit un-filled": ["UPDATE exit_intents SET status = 'FAILED', filled_quantity = 0"],
    "counter lowered": ["UPDATE exit_budgets SET committed_quantity = committed_quantity - 1"],
}


@pytest.mark.parametrize("bypass", sorted(BYPASSES))
def test_the_exit_budget_cannot_be_reset_by_hand(desk: Desk, bypass: str) -> None:
    """The table's owner, typing SQL: every way around the CHECK is refused, and a second
    FILLED exit of the sold quantity still fails (after the exit history is deleted too)."""
    desk.detect(ExitReason.STOP_LOSS, "94.95")
    desk.execute()
    [filled] = intents(desk.engine)
    assert filled.status is ExitIntentStatus.FILLED
    with pytest.raises(IntegrityError), desk.engine.begin() as conn:
        for statement in BYPASSES[bypass]:
            conn.execute(text(statement))
    with desk.engine.begin() as conn:  # the history may go; what it sold stays counted
        conn.execute(text("DELETE FROM orders"))
        conn.execute(text("DELETE FROM exit_intents"))
    second = filled_exit_row(desk.engine, filled.trade_id, 99, 10)
    with pytest.raises(IntegrityError), desk.engine.begin() as conn:
        conn.execute(insert(ExitIntent).values(second))
    with desk.engine.connect() as conn:
        budget = conn.execute(select(ExitBudget)).one()
    assert (budget.entry_quantity, budget.committed_quantity) == (10, 10)


def filled_exit_row(engine: Engine, trade: int, episode: int, quantity: int) -> dict[str, Any]:
    """An exit signal, and the columns of a FILLED exit intent of ``quantity`` hung on it."""
    with engine.begin() as conn:
        signal = conn.execute(
            insert(ExitSignal).returning(ExitSignal.id),
            {
                "trade_id": trade,
                "exit_reason": ExitReason.MANUAL,
                "episode_id": episode,
                "status": "PUBLISHED",
                "price": Decimal("100"),
                "detected_at": AT,
                "created_at": AT,
            },
        ).scalar_one()
        user_broker = conn.execute(select(Trade.user_broker_id)).scalar_one()
    return {
        "exit_signal_id": signal,
        "trade_id": trade,
        "user_broker_id": user_broker,
        "exit_reason": ExitReason.MANUAL,
        "episode_id": episode,
        "status": ExitIntentStatus.FILLED,
        "reason_codes": [],
        "side": "SELL",
        "quantity": quantity,
        "order_type": "MARKET",
        "slices": [quantity],
        "filled_quantity": quantity,
        "created_at": AT,
        "updated_at": AT,
    }


def wait_until_blocked(engine: Engine, application_name: str) -> None:
    """Until that session waits on a lock; bounded, a guard against a hung test."""
    deadline = time.monotonic() + 30
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE application_name = :name AND wait_event_type = 'Lock'"
    )
    with engine.connect() as conn:
        while conn.execute(query, {"name": application_name}).scalar_one() == 0:
            assert time.monotonic() < deadline, "the second writer never blocked"
            conn.rollback()
            time.sleep(0.005)


@pytest.mark.postgres_only
@pytest.mark.parametrize(("each", "refused"), [(6, True), (4, False)])
def test_two_concurrent_first_exits_share_one_budget(
    engine: Engine, database_url: str, each: int, refused: bool
) -> None:
    """Two writers, each exiting ``each`` of 10, the second while the first is uncommitted."""
    trade = seed(engine)
    first_row, second_row = (filled_exit_row(engine, trade, n, each) for n in (1, 2))
    name = f"second-{uuid.uuid4().hex[:8]}"
    second_engine = make_engine(database_url, connect_args={"application_name": name})
    errors: list[Exception] = []

    def second_writer() -> None:
        try:
            with second_engine.begin() as conn:
                conn.execute(insert(ExitIntent).values(second_row))
        except IntegrityError as error:
            errors.append(error)

    with engine.connect() as first:
        first.execute(insert(ExitIntent).values(first_row))  # 6 of 10, not yet committed
        writer = threading.Thread(target=second_writer)
        writer.start()
        wait_until_blocked(engine, name)  # on the budget row the first writer holds
        first.commit()
        writer.join()
    second_engine.dispose()
    # 6 + 6 > 10: refused once the first commits; 4 + 4 fits: both stand (no key clash).
    assert len(errors) == int(refused)
    assert [i.quantity for i in intents(engine)] == ([each] if refused else [each, each])


# ---------------------------------------------------------------- case 2: target vs stop


def resting_target(desk: Desk, *, dispatched: bool = True) -> int:
    """A TARGET that went out as a SELL LIMIT at 110 and rests: the market fell back to 100."""
    desk.detect(ExitReason.TARGET, "110")
    if dispatched:
        [placed] = desk.dispatcher.dispatch_pending()
        assert placed.status is ExitIntentStatus.PLACED
        return placed.exit_intent_id
    return int(intents(desk.engine)[0].id)


def test_a_stop_cancels_the_resting_target_and_exits_everything(desk: Desk) -> None:
    target = resting_target(desk)
    desk.market.set_price("INFY", Decimal("94.9"))
    stop = desk.detect(ExitReason.STOP_LOSS, "94.9")
    assert stop.outcome is ExitOutcome.PREEMPTING
    desk.execute()
    by_id = {i.id: i for i in intents(desk.engine)}
    assert (by_id[target].status, by_id[target].failure_reason) == (
        ExitIntentStatus.FAILED,
        "PREEMPTED",
    )
    [protective] = [i for i in by_id.values() if i.exit_reason is ExitReason.STOP_LOSS]
    assert (protective.status, protective.quantity) == (ExitIntentStatus.FILLED, 10)
    assert desk.market.net_position("INFY") == -10
    [closed] = desk.closer.close_filled()
    assert closed.pnl == Decimal("-51")


def test_a_cancel_that_loses_the_race_to_the_fill_sends_no_second_exit(desk: Desk) -> None:
    target = resting_target(desk)
    desk.market.set_price("INFY", Decimal("94.9"))
    desk.market.fill_before_next_cancel(price=Decimal("110"))
    assert desk.detect(ExitReason.STOP_LOSS, "94.9").outcome is ExitOutcome.PREEMPTING
    desk.execute()
    by_id = {i.id: i for i in intents(desk.engine)}
    assert by_id[target].status is ExitIntentStatus.FILLED
    [stop] = [i for i in by_id.values() if i.exit_reason is ExitReason.STOP_LOSS]
    assert stop.status is ExitIntentStatus.REJECTED
    assert "EXIT_ALREADY_FILLED" in stop.reason_codes
    assert desk.market.net_position("INFY") == -10
    assert len(desk.broker.sent) == 1
    [closed] = desk.closer.close_filled()
    assert closed.pnl == Decimal("100")


def test_a_partly_filled_target_leaves_the_stop_only_the_rest(desk: Desk) -> None:
    resting_target(desk)
    desk.market.set_price("INFY", Decimal("94.9"))
    desk.market.fill_before_next_cancel(quantity=4, price=Decimal("110"))
    desk.detect(ExitReason.STOP_LOSS, "94.9")
    desk.execute()
    [target, stop] = intents(desk.engine)
    assert (target.status, target.filled_quantity) == (ExitIntentStatus.FAILED, 4)
    assert (stop.status, stop.quantity) == (ExitIntentStatus.FILLED, 6)
    assert desk.market.net_position("INFY") == -10
    [closed] = desk.closer.close_filled()
    assert closed.pnl == Decimal(4 * 10 + 6 * (Decimal("94.9") - 100))


def test_a_target_not_yet_sent_is_withdrawn_before_it_reaches_the_broker(desk: Desk) -> None:
    target = resting_target(desk, dispatched=False)
    desk.market.set_price("INFY", Decimal("94.9"))
    assert desk.detect(ExitReason.TIME, "94.9").outcome is ExitOutcome.PREEMPTING
    desk.execute()
    by_id = {i.id: i for i in intents(desk.engine)}
    assert by_id[target].status is ExitIntentStatus.FAILED
    assert [r.order_type for r in desk.broker.sent] == ["MARKET"]  # the target never left
    assert desk.market.net_position("INFY") == -10


def test_the_trade_loop_sends_the_pre_empting_stop_in_the_same_pass(
    engine: Engine, clock: ManualClock
) -> None:
    trade = seed(engine)
    market = SimulatedBroker({"INFY": Decimal("100")})
    settings = ExitSettings(cooldown=COOLDOWN)
    loop = TradeLoop.build(engine, market, clock, settings=settings, sleep=lambda _: None)
    loop.replay()
    [target] = loop.on_tick("INFY", Decimal("110"), clock.now())  # the market is back at 100
    assert target.outcome is ExitOutcome.APPROVED
    loop.run_once()  # the target rests as a SELL LIMIT 110
    clock.advance(timedelta(seconds=5))
    market.set_price("INFY", Decimal("94.9"))
    [stop] = loop.on_tick("INFY", Decimal("94.9"), clock.now())
    assert stop.outcome is ExitOutcome.PREEMPTING
    first = loop.run_once()  # cancel, decide the stop, send it
    assert [r.status for r in first.reconciled] == [ExitIntentStatus.FAILED]
    assert [d.status for d in first.dispatched] == [ExitIntentStatus.PLACED]
    second = loop.run_once()
    assert second.closed == (trade,)
    assert market.net_position("INFY") == -10


# ---------------------------------------------------------------- case 3: stale input, one clock


def test_a_candidate_delivered_again_after_its_clear_is_refused(
    engine: Engine, clock: ManualClock
) -> None:
    trade = seed(engine, connected=False)  # every exit is REJECTED: none stays live
    service = ExitIntentService(engine, clock, settings=ExitSettings(cooldown=COOLDOWN))
    seen = candidate(trade, at=AT)
    assert service.on_exit_detected(seen).outcome is ExitOutcome.REJECTED
    clock.advance(COOLDOWN)
    cleared = ExitCleared(trade_id=trade, reason=ExitReason.STOP_LOSS, cleared_at=AT + COOLDOWN)
    assert service.on_exit_cleared(cleared).rearmed
    clock.advance(timedelta(hours=1))  # the feed re-delivers the old candidate much later
    before, events = counts(engine), event_types(engine)
    again = service.on_exit_detected(seen)
    assert (again.outcome, again.reason_codes) == (ExitOutcome.STALE, ("STALE_CANDIDATE",))
    assert (counts(engine), event_types(engine)) == (before, events)


def test_episodes_run_on_the_ticks_clock_not_the_services(
    engine: Engine, clock: ManualClock
) -> None:
    trade = seed(engine, connected=False)
    service = ExitIntentService(engine, clock, settings=ExitSettings(cooldown=COOLDOWN))
    clock.advance(timedelta(minutes=10))  # the service runs behind the feed
    service.on_exit_detected(candidate(trade, at=AT))
    cleared = ExitCleared(trade_id=trade, reason=ExitReason.STOP_LOSS, cleared_at=AT + COOLDOWN / 2)
    assert service.on_exit_cleared(cleared).rearmed  # newer than the firing, by the feed's clock
    fresh = service.on_exit_detected(candidate(trade, at=AT + COOLDOWN / 2 + timedelta(seconds=1)))
    assert (fresh.outcome, fresh.episode_id) == (ExitOutcome.REJECTED, 2)
    # The cooldown is measured on the feed too: a repeat 10 s later stays in the episode.
    repeat = service.on_exit_detected(candidate(trade, at=AT + COOLDOWN))
    assert repeat.outcome is ExitOutcome.SUPPRESSED


# ---------------------------------------------------------------- case 4: manual exit, no tick


def test_a_manual_exit_before_any_tick_works_with_an_off_tick_entry(
    engine: Engine, clock: ManualClock
) -> None:
    trade = seed(engine, entry="100.0233")  # the average of slices filled at several prices
    service = ExitIntentService(engine, clock)
    monitor = ExitMonitor(ExitDetector(service.settings.condition(nse_calendar())), service)
    monitor.start()
    result = monitor.request_manual_exit(trade, clock.now())
    assert result.outcome is ExitOutcome.APPROVED
    [signal] = rows(engine, ExitSignal)
    assert signal.price % TICK == 0


# ---------------------------------------------------------------- case 5: levels after a fill

planned_brackets = st.tuples(
    st.sampled_from([Direction.LONG, Direction.SHORT]),
    st.integers(min_value=1, max_value=200),  # risk in ticks
    st.integers(min_value=1, max_value=400),  # reward in ticks
    st.integers(min_value=-40, max_value=40),  # fill offset, in hundredths of a tick
)


@given(bracket=planned_brackets)
def test_a_bracket_shifted_to_an_off_tick_fill_never_adds_risk_or_reward(
    bracket: tuple[Direction, int, int, int],
) -> None:
    direction, risk, reward, offset = bracket
    entry = Decimal(2000) * TICK
    sign = 1 if direction is Direction.LONG else -1
    planned = Levels(entry, entry + sign * reward * TICK, entry - sign * risk * TICK)
    fill = entry + offset * TICK / 100
    shifted = planned.shifted_to(fill, TICK)
    assert shifted.target % TICK == 0
    assert shifted.stop % TICK == 0
    assert sign * (shifted.target - fill) <= reward * TICK  # no more reward promised
    assert sign * (fill - shifted.stop) <= risk * TICK  # no more risk taken
    assert sign * (shifted.target - fill) > 0
    assert sign * (fill - shifted.stop) > 0


def test_the_issue_examples_round_toward_the_fill() -> None:
    long = Levels(Decimal("100"), Decimal("110"), Decimal("95"))
    assert long.shifted_to(Decimal("100.03"), TICK) == Levels(
        Decimal("100.03"), Decimal("110.00"), Decimal("95.05")
    )
    short = Levels(Decimal("100"), Decimal("90"), Decimal("105"))
    assert short.shifted_to(Decimal("99.98"), TICK) == Levels(
        Decimal("99.98"), Decimal("90.00"), Decimal("104.95")
    )


# ---------------------------------------------------------------- case 7: one price format


def test_prices_reach_the_broker_and_the_events_as_plain_decimals(desk: Desk) -> None:
    desk.market.set_price("INFY", Decimal("110"))
    desk.detect(ExitReason.TARGET, "110")
    desk.execute()
    [request] = desk.broker.sent
    assert str(request.limit_price) == "110"
    with desk.engine.connect() as conn:
        found = conn.execute(select(OutboxRow.event_type, OutboxRow.payload)).all()
    payloads = {row.event_type: row.payload for row in found}
    assert payloads["EXIT_INTENT_APPROVED"]["limit_price"] == "110"
    assert payloads["EXIT_SIGNAL_PUBLISHED"]["price"] == "110"
    assert payloads["EXIT_INTENT_FILLED"]["average_fill_price"] == "110"
    [closed] = desk.closer.close_filled()
    with desk.engine.connect() as conn:
        closed_event = conn.execute(
            select(OutboxRow.payload).where(OutboxRow.event_type == "TRADE_CLOSED")
        ).scalar_one()
    [trade] = rows(desk.engine, Trade)
    assert trade.status is TradeStatus.CLOSED
    assert (closed_event["exit_price"], closed_event["entry_price"]) == ("110", "100")
    assert str(closed.exit_price) == "110"


def test_a_disconnected_user_broker_still_counts_nothing(desk: Desk) -> None:
    """A REJECTED exit holds no quantity: the budget only counts what may leave or left."""
    with desk.engine.begin() as conn:
        conn.execute(update(UserBroker).values(connected=False))
    desk.detect(ExitReason.STOP_LOSS, "94.95")
    with desk.engine.connect() as conn:
        assert conn.execute(select(ExitBudget.committed_quantity)).scalar_one() == 0


# ---------------------------------------------------------------- bad ticks, isolation, no tick

SQUARE_OFF = AT + timedelta(hours=5, minutes=46)  # 15:16 Asia/Kolkata, past the square-off


def trade_loop(engine: Engine, clock: ManualClock, market: BrokerGateway) -> TradeLoop:
    settings = ExitSettings(cooldown=COOLDOWN)
    return TradeLoop.build(engine, market, clock, settings=settings, sleep=lambda _: None)


def test_an_off_tick_price_is_refused_and_changes_nothing(
    engine: Engine, clock: ManualClock
) -> None:
    trade = seed(engine)  # LONG 10 INFY on a 0.05 tick, stop 95
    market = SimulatedBroker({"INFY": Decimal("100")})
    loop = trade_loop(engine, clock, market)
    loop.replay()
    with pytest.raises(InvalidInputError):
        loop.on_tick("INFY", Decimal("100.02"), clock.now())  # crosses nothing
    with pytest.raises(InvalidInputError):
        loop.on_tick("INFY", Decimal("94.93"), clock.now())  # crosses the stop
    # Nothing was kept: the desk's exit refers to the entry, and the next valid tick
    # below the stop fires at once (the refused one did not count as emitted).
    clock.advance(timedelta(seconds=1))
    [stop] = loop.on_tick("INFY", Decimal("94.9"), clock.now())
    assert (stop.trade_id, stop.reason) == (trade, ExitReason.STOP_LOSS)
    assert stop.outcome is ExitOutcome.APPROVED
    clock.set(SQUARE_OFF)
    assert loop.run_once().failures == ()


def test_one_trades_failure_never_blocks_the_others_square_off(
    engine: Engine, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken, sound = seed(engine), seed(engine, symbol="TCS")
    market = SimulatedBroker({"INFY": Decimal("100"), "TCS": Decimal("100")})
    loop = trade_loop(engine, clock, market)
    loop.replay()
    record = loop.exits.on_exit_detected

    def fails_for_one_trade(found: Any, connection: Any = None) -> Any:
        if found.trade_id == broken:
            raise InvalidInputError("refused", field="price", value=found.price)
        return record(found, connection)

    monkeypatch.setattr(loop.exits, "on_exit_detected", fails_for_one_trade)
    clock.set(SQUARE_OFF)
    first = loop.run_once()
    assert [(f.step, f.trade_id) for f in first.failures] == [("exit_detected", broken)]
    loop.run_once()
    status = {t.id: t.status for t in rows(engine, Trade)}
    assert status == {broken: TradeStatus.OPEN, sound: TradeStatus.CLOSED}
    assert (market.net_position("INFY"), market.net_position("TCS")) == (0, -10)
    with pytest.raises(InvalidInputError):  # the desk still hears of the failure
        loop.request_manual_exit(broken, clock.now())


def test_a_restarted_loop_squares_off_a_symbol_without_a_tick(
    engine: Engine, clock: ManualClock
) -> None:
    trade = seed(engine, entry="100.0233")  # an off-tick average entry
    market = SimulatedBroker({"INFY": Decimal("101")})
    clock.set(SQUARE_OFF - timedelta(minutes=16))  # the process restarts at 15:00, no tick since
    loop = trade_loop(engine, clock, market)
    loop.replay()
    clock.set(SQUARE_OFF)
    [fired] = loop.run_once().time_exits
    assert (fired.trade_id, fired.reason, fired.outcome) == (
        trade,
        ExitReason.TIME,
        ExitOutcome.APPROVED,
    )
    loop.run_once()
    [closed] = rows(engine, Trade)
    assert closed.status is TradeStatus.CLOSED
    assert market.net_position("INFY") == -10  # the seeded entry never went through it


def test_a_tick_or_clear_stamped_ahead_of_the_clock_is_refused_and_writes_nothing(
    engine: Engine, clock: ManualClock
) -> None:
    trade = seed(engine)
    market = SimulatedBroker({"INFY": Decimal("94.9")})
    loop = trade_loop(engine, clock, market)
    loop.replay()
    market.reject_next("RMS_MARGIN")  # the first stop is refused: the episode may re-arm
    loop.on_tick("INFY", Decimal("94.9"), clock.now())
    loop.run_once()
    assert [i.status for i in intents(engine)] == [ExitIntentStatus.FAILED]
    before, events = counts(engine), event_types(engine)
    ahead = clock.now() + timedelta(hours=5)
    with pytest.raises(InvalidInputError):
        loop.on_tick("INFY", Decimal("100"), ahead)  # back above the stop, stamped ahead
    clear = ExitCleared(trade_id=trade, reason=ExitReason.STOP_LOSS, cleared_at=ahead)
    with pytest.raises(InvalidInputError):
        loop.exits.on_exit_cleared(clear)
    with pytest.raises(InvalidInputError):
        loop.exits.on_exit_detected(candidate(trade, price="94.9", at=ahead))
    assert (counts(engine), event_types(engine)) == (before, events)
    # The correctly stamped stops that follow still exit once the cooldown has passed.
    clock.advance(timedelta(seconds=1))
    loop.on_tick("INFY", Decimal("100"), clock.now())  # a real clear
    clock.advance(COOLDOWN)
    [stop] = loop.on_tick("INFY", Decimal("94.9"), clock.now())
    assert stop.outcome is ExitOutcome.APPROVED
    loop.run_once()
    assert market.net_position("INFY") == -10


def test_a_pass_reaches_a_pre_empted_target_beyond_one_batch(
    engine: Engine, clock: ManualClock
) -> None:
    trades = [seed(engine) for _ in range(3)]  # LONG 10 INFY each, target 110, stop 95
    market = SimulatedBroker({"INFY": Decimal("100")})
    service = ExitIntentService(engine, clock, settings=ExitSettings(cooldown=COOLDOWN))
    dispatcher = ExitIntentDispatcher(engine, market, clock, sleep=lambda _: None)
    reconciler = Reconciler(engine, market, clock, batch_size=2)
    for trade in trades:  # three targets rest as SELL LIMIT 110: the market is at 100
        service.on_exit_detected(candidate(trade, ExitReason.TARGET, "110", clock.now()))
    dispatcher.dispatch_pending()
    market.set_price("INFY", Decimal("94.9"))
    newest = trades[-1]
    stop = service.on_exit_detected(candidate(newest, ExitReason.STOP_LOSS, "94.9", clock.now()))
    assert stop.outcome is ExitOutcome.PREEMPTING
    clock.advance(2 * COOLDOWN)  # the stop keeps holding past the cooldown while it waits
    again = service.on_exit_detected(candidate(newest, ExitReason.STOP_LOSS, "94.9", clock.now()))
    assert (again.outcome, again.exit_signal_id) == (ExitOutcome.SUPPRESSED, stop.exit_signal_id)
    assert len(rows(engine, ExitSignal, ExitSignal.trade_id == newest)) == 2  # target, stop
    reconciler.reconcile_placed()
    service.replay()
    dispatcher.dispatch_pending()
    reconciler.reconcile_placed()
    by_trade = {(i.trade_id, i.exit_reason): i.status for i in intents(engine)}
    assert by_trade[(newest, ExitReason.TARGET)] is ExitIntentStatus.FAILED
    assert by_trade[(newest, ExitReason.STOP_LOSS)] is ExitIntentStatus.FILLED
    assert market.net_position("INFY") == -10


@dataclass
class BrokenForOneSymbol:
    """A broker adapter with a bug for one symbol: placing its orders raises."""

    inner: SimulatedBroker
    symbol: str

    def place(self, request: OrderRequest) -> PlaceResult:
        if request.symbol == self.symbol:
            raise RuntimeError(f"adapter bug on {request.symbol}")
        return self.inner.place(request)

    def cancel(self, client_order_id: str) -> BrokerOrder | None:
        return self.inner.cancel(client_order_id)

    def order_status(self, client_order_id: str) -> BrokerOrder | None:
        return self.inner.order_status(client_order_id)

    def is_connected(self) -> bool:
        return self.inner.is_connected()


def test_one_exit_intents_dispatch_failure_never_holds_back_the_others(
    engine: Engine, clock: ManualClock
) -> None:
    broken, sound = seed(engine), seed(engine, symbol="TCS")
    market = SimulatedBroker({"INFY": Decimal("100"), "TCS": Decimal("100")})
    loop = trade_loop(engine, clock, BrokenForOneSymbol(market, "INFY"))
    loop.replay()
    clock.set(SQUARE_OFF)
    report = loop.run_once()
    assert report.closed == (sound,)
    [failure] = report.failures
    intent_of = {i.trade_id: i.id for i in intents(engine)}
    assert (failure.step, failure.exit_intent_id) == ("dispatch", intent_of[broken])
    assert (market.net_position("INFY"), market.net_position("TCS")) == (0, -10)


def test_one_trades_close_failure_never_holds_back_the_others(
    engine: Engine, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken, sound = seed(engine), seed(engine, symbol="TCS")
    market = SimulatedBroker({"INFY": Decimal("100"), "TCS": Decimal("100")})
    loop = trade_loop(engine, clock, market)
    loop.replay()
    close = loop.closer.close_for_exit

    def fails_for_one_trade(intent_id: int, connection: Any = None) -> Any:
        if intent_id == intent_of[broken]:
            raise IllegalTransitionError(
                "trade", broken, expected="OPEN", target="CLOSED", actual=None
            )
        return close(intent_id, connection)

    clock.set(SQUARE_OFF)
    loop.run_once(close=False)
    intent_of = {i.trade_id: i.id for i in intents(engine)}
    monkeypatch.setattr(loop.closer, "close_for_exit", fails_for_one_trade)
    report = loop.run_once()
    assert report.closed == (sound,)
    assert [(f.step, f.exit_intent_id) for f in report.failures] == [("close", intent_of[broken])]
