"""ExitMonitor: ticks in, recorded exits out — the detector and ExitIntentService wired.

What a host calls from its market-data loop. Per tick: the detector finds the
crossed triggers; improved trailing marks are persisted; cleared conditions
re-arm their episodes; candidates go to ``ExitIntentService`` (which the
database keeps idempotent, so a repeated candidate is at worst SUPPRESSED).
Trades join when they open (``track``) and leave when they close (``untrack``);
``start`` rebuilds the detector from the database after a restart.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from signal_mgmt.errors import NotFoundError
from signal_mgmt.exit.detector import ExitDetector, TickOutcome
from signal_mgmt.exit.service import ExitDetectionResult, ExitIntentService
from signal_mgmt.exit.store import load_open_trades, rebuild_detector, save_water_marks
from signal_mgmt.qualification.exit_rules import ExitRejectReason


class ExitMonitor:
    def __init__(self, detector: ExitDetector, service: ExitIntentService) -> None:
        self.detector = detector
        self.service = service

    def start(self) -> int:
        """Load every open trade (and its trailing mark) into the detector."""
        return rebuild_detector(self.detector, self.service.engine)

    def track(self, trade_id: int) -> None:
        """Watch a trade that just opened (e.g. on TRADE_OPENED)."""
        found = load_open_trades(self.service.engine, trade_ids=[trade_id])
        if not found:
            raise NotFoundError("open trade", trade_id)
        [(trade, mark)] = found
        self.detector.add_trade(trade, water_mark=mark)

    def untrack(self, trade_id: int) -> None:
        """Stop watching a trade (e.g. on TRADE_CLOSED)."""
        self.detector.remove_trade(trade_id)

    def on_tick(self, symbol: str, price: Decimal, at: datetime) -> list[ExitDetectionResult]:
        return self._record(self.detector.on_tick(symbol, price, at))

    def on_time(self, at: datetime) -> list[ExitDetectionResult]:
        return self._record(self.detector.on_time(at))

    def request_manual_exit(
        self, trade_id: int, at: datetime, price: Decimal | None = None
    ) -> ExitDetectionResult:
        return self.service.on_exit_detected(self.detector.request_manual_exit(trade_id, at, price))

    def _record(self, outcome: TickOutcome) -> list[ExitDetectionResult]:
        save_water_marks(self.service.engine, outcome.water_marks, self.service.clock)
        for cleared in outcome.cleared:
            self.service.on_exit_cleared(cleared)
        results = [self.service.on_exit_detected(found) for found in outcome.candidates]
        for result in results:
            if ExitRejectReason.TRADE_NOT_OPEN in result.reason_codes:
                self.detector.remove_trade(result.trade_id)  # closed elsewhere: stop watching
        return results
