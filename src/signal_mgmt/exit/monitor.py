"""ExitMonitor: ticks in, recorded exits out — the detector and ExitIntentService wired.

What a host calls from its market-data loop. Per tick: the detector finds the
crossed triggers; improved trailing marks are persisted; cleared conditions
re-arm their episodes; candidates go to ``ExitIntentService`` (which the
database keeps idempotent, so a repeated candidate is at worst SUPPRESSED).
Trades join when they open (``track``) and leave when they close (``untrack``);
``start`` rebuilds the detector from the database after a restart.

Safe to feed from several threads: ticks of one symbol are handled one at a
time, in arrival order, while other symbols proceed; the in-memory detector is
touched under one short lock, the database work (per trade serialized by the
service) outside it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from signal_mgmt.errors import NotFoundError
from signal_mgmt.exit.detector import ExitDetector, TickOutcome
from signal_mgmt.exit.service import ExitDetectionResult, ExitIntentService
from signal_mgmt.exit.store import (
    load_open_trades,
    open_trade_ids,
    rebuild_detector,
    save_water_marks,
)
from signal_mgmt.market.clock import require_aware
from signal_mgmt.qualification.exit_rules import ExitRejectReason
from signal_mgmt.storage.locks import KeyedLocks
from signal_mgmt.validation import require_text

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TradeFailure:
    """One trade's step that raised; the other trades' steps went on."""

    step: str
    trade_id: int | None  # None: the step failed before reaching a trade, or for an intent
    error: Exception
    exit_intent_id: int | None = None  # the exit intent a dispatch / reconcile failed on


class ExitMonitor:
    def __init__(self, detector: ExitDetector, service: ExitIntentService) -> None:
        self.detector = detector
        self.service = service
        self._detector_lock = threading.Lock()
        self._symbols = KeyedLocks()

    def __contains__(self, trade_id: object) -> bool:
        """Whether the detector watches this trade."""
        with self._detector_lock:
            return trade_id in self.detector

    def __len__(self) -> int:
        with self._detector_lock:
            return len(self.detector)

    def start(self) -> int:
        """Load every open trade (and its trailing mark) into the detector."""
        with self._detector_lock:
            return rebuild_detector(self.detector, self.service.engine)

    def track(self, trade_id: int) -> None:
        """Watch a trade that just opened (e.g. on TRADE_OPENED)."""
        found = load_open_trades(self.service.engine, trade_ids=[trade_id])
        if not found:
            raise NotFoundError("open trade", trade_id)
        [(trade, mark)] = found
        with self._detector_lock:
            self.detector.add_trade(trade, water_mark=mark)

    def catch_up(self) -> tuple[int, ...]:
        """Watch every OPEN trade the detector does not have yet (opened by another
        thread or process since the last call); returns their ids."""
        with self._detector_lock:
            missing = [i for i in open_trade_ids(self.service.engine) if i not in self.detector]
        if not missing:
            return ()
        found = load_open_trades(self.service.engine, trade_ids=missing)
        with self._detector_lock:
            fresh = [(trade, mark) for trade, mark in found if trade.trade_id not in self.detector]
            for trade, mark in fresh:
                self.detector.add_trade(trade, water_mark=mark)
        return tuple(trade.trade_id for trade, _ in fresh)

    def untrack(self, trade_id: int) -> None:
        """Stop watching a trade (e.g. on TRADE_CLOSED)."""
        with self._detector_lock:
            self.detector.remove_trade(trade_id)

    def on_tick(self, symbol: str, price: Decimal, at: datetime) -> list[ExitDetectionResult]:
        """Record what the tick found; a trade whose recording raises does not stop the
        others', and the first such error is raised once they are all recorded."""
        require_text(symbol, "symbol", 64)  # before it keys a lock
        require_aware(at, "at")
        self.service.require_not_ahead(at, "at")  # before the detector keeps anything
        with self._symbols.hold(symbol):
            with self._detector_lock:
                outcome = self.detector.on_tick(symbol, price, at)
            return _raise_first(*self._record(outcome))

    def on_time(self, at: datetime) -> list[ExitDetectionResult]:
        return _raise_first(*self.fire_due(at))

    def fire_due(self, at: datetime) -> tuple[list[ExitDetectionResult], list[TradeFailure]]:
        """The TIME exits due at ``at``, each trade isolated: what the loop runs."""
        with self._detector_lock:
            outcome = self.detector.on_time(at)
        return self._record(outcome)

    def request_manual_exit(
        self, trade_id: int, at: datetime, price: Decimal | None = None
    ) -> ExitDetectionResult:
        with self._detector_lock:
            candidate = self.detector.request_manual_exit(trade_id, at, price)
        return self.service.on_exit_detected(candidate)

    def _record(self, outcome: TickOutcome) -> tuple[list[ExitDetectionResult], list[TradeFailure]]:
        save_water_marks(self.service.engine, outcome.water_marks, self.service.clock)
        failures: list[TradeFailure] = []
        for cleared in outcome.cleared:
            try:
                self.service.on_exit_cleared(cleared)
            except Exception as error:  # one trade must not block the others
                failures.append(_failed("exit_cleared", cleared.trade_id, error))
        results: list[ExitDetectionResult] = []
        for found in outcome.candidates:
            try:
                results.append(self.service.on_exit_detected(found))
            except Exception as error:  # one trade must not block the others
                failures.append(_failed("exit_detected", found.trade_id, error))
        for result in results:
            if ExitRejectReason.TRADE_NOT_OPEN in result.reason_codes:
                self.untrack(result.trade_id)  # closed elsewhere: stop watching
        return results, failures


def _failed(step: str, trade_id: int | None, error: Exception) -> TradeFailure:
    logger.error("exit step %s failed for trade %s: %r", step, trade_id, error, exc_info=error)
    return TradeFailure(step, trade_id, error)


def _raise_first(
    results: list[ExitDetectionResult], failures: list[TradeFailure]
) -> list[ExitDetectionResult]:
    if failures:
        raise failures[0].error
    return results
