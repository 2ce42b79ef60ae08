"""The whole ENTRY path through EntryCoordinator: candidate -> signal -> intents -> trades."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine, select

from entry_support import count
from entry_world import make_world
from signal_mgmt.entry import EntryCoordinator
from signal_mgmt.entry.qualification import EntryQualificationService
from signal_mgmt.errors import InvalidInputError, NotFoundError
from signal_mgmt.execution import SimulatedBroker
from signal_mgmt.market.calendar import nse_calendar
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import OutboxRow, Trade, TradeIntent, TradeIntentStatus, TradeStatus
from signal_mgmt.tms import TradeOpener


def test_candidate_to_open_trades_in_order_per_symbol(engine: Engine, clock: ManualClock) -> None:
    world = make_world(engine, clock, users=2)
    broker = SimulatedBroker({"INFY": Decimal("100.05"), "TCS": Decimal("250.00")})
    qualification = EntryQualificationService(engine, clock, nse_calendar())
    opener = TradeOpener(engine, clock, broker, sleep=lambda _: None)
    with EntryCoordinator(world.signals, qualification, opener, lanes=2) as coordinator:
        futures = [coordinator.submit(world.candidate(s)) for s in ("INFY", "TCS", "INFY")]
        outcomes = [future.result() for future in futures]
    assert [o.published.created for o in outcomes] == [True, True, False]
    assert outcomes[2].published.signal_id == outcomes[0].published.signal_id
    assert all(t.trade_status is TradeStatus.OPEN for o in outcomes for t in o.trades)
    with engine.connect() as conn:
        assert count(conn, TradeIntent) == 2 + 3
        assert count(conn, Trade) == 5
        prices = set(conn.execute(select(Trade.entry_price)).scalars())
        statuses = set(conn.execute(select(TradeIntent.status)).scalars())
        events = count(conn, OutboxRow)
    assert prices == {Decimal("100.05"), Decimal("250.00")}
    assert statuses == {TradeIntentStatus.FILLED}
    # 2 signals + 5 deliveries + 5 approvals + 5 placed + 5 filled + 5 opened
    assert events == 2 + 5 + 5 + 5 + 5 + 5
    assert broker.place_calls == 5


def test_replay_finishes_every_stage_once(engine: Engine, clock: ManualClock) -> None:
    world = make_world(engine, clock, users=2)
    world.signals.publish(world.candidate("INFY"))  # deliveries left unconsumed
    broker = SimulatedBroker({"INFY": Decimal("100.00")})
    qualification = EntryQualificationService(engine, clock, nse_calendar())
    opener = TradeOpener(engine, clock, broker, sleep=lambda _: None)
    with EntryCoordinator(world.signals, qualification, opener) as coordinator:
        first = coordinator.replay()
        second = coordinator.replay()
    assert len(first.intents_created) == 2
    assert [t.trade_status for t in first.trades_advanced] == [TradeStatus.OPEN] * 2
    assert (second.signals_finished, second.intents_created, second.trades_advanced) == ((), (), ())
    assert broker.place_calls == 2


def test_a_symbols_candidates_run_in_submission_order(engine: Engine, clock: ManualClock) -> None:
    world = make_world(engine, clock, users=1)
    qualification = EntryQualificationService(engine, clock, nse_calendar())
    floors = [Decimal(90) + n for n in range(8)]
    with EntryCoordinator(world.signals, qualification, lanes=3) as coordinator:
        futures = [
            coordinator.submit(world.candidate(symbol, effective_floor=floor))
            for floor in floors
            for symbol in ("INFY", "TCS")
        ]
        outcomes = [future.result() for future in futures]
    for symbol in ("INFY", "TCS"):
        # ids are assigned at insert: ascending ids in submission order = processed in order
        ids = [o.published.signal_id for o in outcomes[(symbol == "TCS") :: 2]]
        assert ids == sorted(ids)
        assert len(set(ids)) == len(floors)


def test_unknown_intent_or_candidate_is_refused(engine: Engine, clock: ManualClock) -> None:
    world = make_world(engine, clock)
    opener = TradeOpener(engine, clock, SimulatedBroker())
    with pytest.raises(NotFoundError):
        opener.open(4242)
    qualification = EntryQualificationService(engine, clock, nse_calendar())
    with (
        EntryCoordinator(world.signals, qualification) as coordinator,
        pytest.raises(InvalidInputError),
    ):
        coordinator.submit("INFY")  # type: ignore[arg-type]
    with engine.connect() as conn:
        assert (count(conn, Trade), count(conn, OutboxRow)) == (0, 0)
