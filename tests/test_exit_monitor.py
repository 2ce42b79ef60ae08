"""ExitMonitor end to end on both backends: ticks -> recorded exits, restart keeps marks."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, update

from entry_support import AT
from exit_support import rows, seed
from signal_mgmt.errors import InvalidInputError, NotFoundError
from signal_mgmt.exit.conditions import StopLoss, Target, TrailingStop
from signal_mgmt.exit.detector import ExitDetector
from signal_mgmt.exit.monitor import ExitMonitor
from signal_mgmt.exit.service import ExitIntentService, ExitOutcome
from signal_mgmt.exit.settings import ExitSettings
from signal_mgmt.exit.store import save_water_marks
from signal_mgmt.market import ManualClock
from signal_mgmt.models import ExitReason, ExitSignal, ExitTrailingMark, Trade

SETTINGS = ExitSettings(cooldown=timedelta(minutes=5), reemit_interval=timedelta(seconds=0))


def monitor(engine: Engine, clock: ManualClock) -> ExitMonitor:
    detector = ExitDetector(
        Target() | StopLoss() | TrailingStop(Decimal("2")),
        reemit_interval=SETTINGS.reemit_interval,
    )
    return ExitMonitor(detector, ExitIntentService(engine, clock, settings=SETTINGS))


def test_ticks_become_one_exit_and_repeats_are_suppressed(
    engine: Engine, clock: ManualClock
) -> None:
    trade_id = seed(engine, stop="90")
    watcher = monitor(engine, clock)
    assert watcher.start() == 1
    assert watcher.on_tick("INFY", Decimal("105"), AT) == []
    fired = watcher.on_tick("INFY", Decimal("103"), AT + timedelta(seconds=1))
    assert [(r.outcome, r.reason) for r in fired] == [
        (ExitOutcome.APPROVED, ExitReason.TRAILING_STOP)
    ]
    again = watcher.on_tick("INFY", Decimal("102.95"), AT + timedelta(seconds=2))
    assert [r.outcome for r in again] == [ExitOutcome.SUPPRESSED]
    assert len(rows(engine, ExitSignal)) == 1
    assert rows(engine, ExitTrailingMark)[0].trade_id == trade_id


def test_a_restart_keeps_the_trailing_mark(engine: Engine, clock: ManualClock) -> None:
    seed(engine, stop="90")
    first = monitor(engine, clock)
    first.start()
    first.on_tick("INFY", Decimal("108"), AT)
    restarted = monitor(engine, clock)
    restarted.start()
    assert restarted.detector.water_mark(1) == Decimal("108")
    fired = restarted.on_tick("INFY", Decimal("106"), AT + timedelta(seconds=1))
    assert [r.reason for r in fired] == [ExitReason.TRAILING_STOP]


def test_track_untrack_and_manual_exit(engine: Engine, clock: ManualClock) -> None:
    watcher = monitor(engine, clock)
    assert watcher.start() == 0
    trade_id = seed(engine)
    watcher.track(trade_id)
    assert trade_id in watcher.detector
    result = watcher.request_manual_exit(trade_id, AT, Decimal("100"))
    assert (result.outcome, result.reason) == (ExitOutcome.APPROVED, ExitReason.MANUAL)
    watcher.untrack(trade_id)
    assert watcher.on_tick("INFY", Decimal("80"), AT) == []
    closed = seed(engine, status="CLOSED")
    with pytest.raises(NotFoundError):
        watcher.track(closed)


def test_a_trade_closed_elsewhere_stops_being_watched(engine: Engine, clock: ManualClock) -> None:
    watcher = monitor(engine, clock)
    trade_id = seed(engine)
    watcher.start()
    with engine.begin() as conn:
        conn.execute(update(Trade).values(status="CLOSED"))
    results = watcher.on_tick("INFY", Decimal("94"), AT)  # stop and trailing stop
    assert {r.reason_codes for r in results} == {("TRADE_NOT_OPEN",)}
    assert trade_id not in watcher.detector


@pytest.mark.parametrize("bad", [{1: Decimal("NaN")}, {1: Decimal("-1")}, {0: Decimal("1")}])
def test_bad_water_marks_are_refused(
    engine: Engine, clock: ManualClock, bad: dict[int, Decimal]
) -> None:
    seed(engine)
    with pytest.raises(InvalidInputError):
        save_water_marks(engine, bad, clock)
    assert rows(engine, ExitTrailingMark) == []


def test_water_marks_never_move_backwards(engine: Engine, clock: ManualClock) -> None:
    long_id, short_id = seed(engine), seed(engine, direction="SHORT", target="90", stop="105")
    save_water_marks(engine, {long_id: Decimal("105"), short_id: Decimal("95")}, clock)
    save_water_marks(engine, {long_id: Decimal("104"), short_id: Decimal("96")}, clock)
    save_water_marks(engine, {long_id: Decimal("106")}, clock)
    marks = {m.trade_id: m.water_mark for m in rows(engine, ExitTrailingMark)}
    assert marks == {long_id: Decimal("106"), short_id: Decimal("95")}
