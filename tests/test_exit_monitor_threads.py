"""ExitMonitor fed from several threads: one symbol's ticks one at a time, symbols in parallel.

A stand-in service records how many candidates are inside it at once and holds each one until
a second arrives (or half a second passes), so any overlap that the locks allow happens.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import cast

from signal_mgmt.exit.candidate import ExitCandidate, ExitCleared
from signal_mgmt.exit.conditions import OpenTrade, StopLoss
from signal_mgmt.exit.detector import ExitDetector
from signal_mgmt.exit.monitor import ExitMonitor
from signal_mgmt.exit.service import ExitDetectionResult, ExitIntentService, ExitOutcome
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import Direction

T0 = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
OVERLAP_WINDOW = 0.5  # seconds a candidate waits for company; only serialized calls wait it out


class GateService:
    """Stands in for ExitIntentService (no database): counts candidates in flight."""

    def __init__(self) -> None:
        self.engine = None
        self.clock = ManualClock(T0)
        self._lock = threading.Lock()
        self._inside = 0
        self.most_inside = 0
        self.candidates = 0
        self._company = threading.Event()

    def on_exit_detected(self, candidate: ExitCandidate) -> ExitDetectionResult:
        with self._lock:
            self.candidates += 1
            self._inside += 1
            self.most_inside = max(self.most_inside, self._inside)
            if self._inside > 1:
                self._company.set()
        self._company.wait(OVERLAP_WINDOW)
        with self._lock:
            self._inside -= 1
        return ExitDetectionResult(ExitOutcome.APPROVED, candidate.trade_id, candidate.reason, 1)

    def on_exit_cleared(self, cleared: ExitCleared) -> bool:
        return False

    def require_not_ahead(self, at: datetime, field: str) -> None:
        """Every tick of these tests is stamped in the past."""


def watching(*symbols: str) -> tuple[ExitMonitor, GateService]:
    detector = ExitDetector(StopLoss(), reemit_interval=timedelta(0))
    for trade_id, symbol in enumerate(symbols, start=1):
        detector.add_trade(
            OpenTrade(
                trade_id=trade_id,
                symbol=symbol,
                direction=Direction.LONG,
                entry_price=Decimal("100"),
                target_price=Decimal("110"),
                stop_price=Decimal("95"),
                opened_at=T0,
            )
        )
    service = GateService()
    return ExitMonitor(detector, cast(ExitIntentService, service)), service


def tick_together(monitor: ExitMonitor, symbols: tuple[str, str]) -> None:
    start = threading.Barrier(len(symbols))

    def feed(symbol: str) -> None:
        start.wait()
        monitor.on_tick(symbol, Decimal("94"), T0)  # each tick yields a candidate

    threads = [threading.Thread(target=feed, args=(symbol,)) for symbol in symbols]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_ticks_of_one_symbol_from_two_threads_are_handled_one_at_a_time() -> None:
    monitor, service = watching("INFY")
    tick_together(monitor, ("INFY", "INFY"))
    assert service.candidates == 2
    assert service.most_inside == 1


def test_ticks_of_two_symbols_are_handled_in_parallel() -> None:
    monitor, service = watching("INFY", "TCS")
    tick_together(monitor, ("INFY", "TCS"))
    assert service.most_inside == 2
