"""TradeLoop: the host's worker loop, from an approved trade intent to a closed trade.

What a TMS calls, and when:

- ``replay()`` once on start, before taking new work: entry replay (signals,
  deliveries, entry orders), the exit detector rebuilt from the open trades,
  then the exit decisions and orders a crash left PENDING / APPROVED, then one
  pass;
- ``run_once()`` from one worker thread, every few seconds and after exit
  activity: time exits that are due, approved intents opened (entry orders
  placed and reconciled), approved exits dispatched, placed exits reconciled
  (pre-empted targets cancelled), the exits waiting for them decided and
  dispatched, FILLED trades closed, and the detector kept watching the open trades;
- ``on_tick`` from market-data threads (safe from several: one symbol at a
  time, symbols in parallel), ``request_manual_exit`` from a desk.

Every step is a guarded transition, so a pass run twice, or beside another
instance's, finishes each row exactly once. A step or a trade that raises is
logged and reported in ``PassReport.failures``; the pass goes on with the other
trades and the next steps, so one bad row never stops every square-off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import Engine

from signal_mgmt.execution.broker import BrokerGateway, GatewayConnectivity
from signal_mgmt.execution.exit_dispatcher import DispatchResult, ExitIntentDispatcher
from signal_mgmt.execution.exit_reconciler import Reconciler, ReconcileResult
from signal_mgmt.execution.exit_status import IntentErrorHandler
from signal_mgmt.exit.detector import ExitDetector
from signal_mgmt.exit.monitor import ExitMonitor, TradeFailure
from signal_mgmt.exit.service import ExitDetectionResult, ExitIntentService, ExitReplayReport
from signal_mgmt.exit.settings import ExitSettings, load_exit_settings
from signal_mgmt.market.calendar import MarketCalendar, nse_calendar
from signal_mgmt.market.clock import Clock
from signal_mgmt.tms.close import TradeCloser
from signal_mgmt.tms.open import OpenResult, TradeOpener

if TYPE_CHECKING:  # entry/ imports tms/ at runtime; a type is all the loop needs
    from signal_mgmt.entry.coordinator import EntryCoordinator

logger = logging.getLogger(__name__)

_NOT_DECIDED = ExitReplayReport(signals_finished=0, intents_decided=0)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class PassReport:
    """What one ``run_once`` did."""

    time_exits: tuple[ExitDetectionResult, ...]
    entries: tuple[OpenResult, ...]
    watched: tuple[int, ...]  # trades the detector started watching
    dispatched: tuple[DispatchResult, ...]
    reconciled: tuple[ReconcileResult, ...]
    decided: ExitReplayReport  # exits that waited for a pre-empted target, or were left PENDING
    closed: tuple[int, ...]  # trades closed (and no longer watched)
    failures: tuple[TradeFailure, ...] = ()  # steps that raised; the rest of the pass ran


@dataclass(frozen=True, slots=True)
class LoopReplayReport:
    """What ``replay`` finished, step by step."""

    signals_finished: int
    deliveries_qualified: int
    entries: tuple[OpenResult, ...]
    watched: int
    exits: ExitReplayReport
    dispatched: tuple[DispatchResult, ...]
    settled: PassReport


class TradeLoop:
    """Open, dispatch, reconcile, close, and keep the exit monitor in step.

    ``entry`` is optional: with an ``EntryCoordinator``, ``replay`` also finishes
    the ENTRY path's signals and deliveries; without one it only opens the
    approved intents.
    """

    def __init__(
        self,
        *,
        opener: TradeOpener,
        monitor: ExitMonitor,
        dispatcher: ExitIntentDispatcher,
        reconciler: Reconciler,
        closer: TradeCloser,
        entry: EntryCoordinator | None = None,
    ) -> None:
        self.opener = opener
        self.monitor = monitor
        self.dispatcher = dispatcher
        self.reconciler = reconciler
        self.closer = closer
        self.entry = entry

    @classmethod
    def build(
        cls,
        engine: Engine,
        broker: BrokerGateway,
        clock: Clock,
        calendar: MarketCalendar | None = None,
        *,
        settings: ExitSettings | None = None,
        limit_order_ttl: timedelta | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> TradeLoop:
        """The default wiring: one broker for every user-broker, whose connection state
        Stage B reads; ``sleep`` is the broker retries' backoff."""
        settings = settings if settings is not None else load_exit_settings()
        calendar = calendar if calendar is not None else nse_calendar()
        detector = ExitDetector(
            settings.condition(calendar), reemit_interval=settings.reemit_interval
        )
        exits = ExitIntentService(
            engine,
            clock,
            calendar,
            settings=settings,
            connectivity=GatewayConnectivity(broker),
        )
        return cls(
            opener=TradeOpener(
                engine,
                clock,
                broker,
                calendar=calendar,
                entry_cutoff=settings.entry_cutoff_time,
                entry_ttl=settings.entry_ttl,
                sleep=sleep,
            ),
            monitor=ExitMonitor(detector, exits),
            dispatcher=ExitIntentDispatcher(engine, broker, clock, sleep=sleep),
            reconciler=Reconciler(engine, broker, clock, limit_order_ttl=limit_order_ttl),
            closer=TradeCloser(engine, clock),
        )

    @property
    def exits(self) -> ExitIntentService:
        return self.monitor.service

    # ------------------------------------------------------------------ host calls

    def replay(self) -> LoopReplayReport:
        """On start, before new work: entry first (it opens trades), then the detector
        rebuilt from the open trades, then exits left PENDING / APPROVED, then a pass."""
        if self.entry is not None:
            entry = self.entry.replay()
            signals, deliveries = len(entry.signals_finished), len(entry.intents_created)
            entries = entry.trades_advanced
        else:
            signals, deliveries = 0, 0
            entries = tuple(self.opener.open_pending())
        watched = self.monitor.start()
        exits = self.exits.replay()
        dispatched = tuple(self.dispatcher.dispatch_pending())
        return LoopReplayReport(
            signals_finished=signals,
            deliveries_qualified=deliveries,
            entries=entries,
            watched=watched,
            exits=exits,
            dispatched=dispatched,
            settled=self.run_once(),
        )

    def run_once(self, *, close: bool = True) -> PassReport:
        """One pass, in the order that lets each step feed the next.

        ``close=False`` leaves FILLED trades to a host that closes them itself when it
        consumes EXIT_INTENT_FILLED (``TradeCloser.close_for_exit``).
        """
        failures = _Failures()
        step = failures.step

        def dispatch() -> tuple[DispatchResult, ...]:
            return tuple(self.dispatcher.dispatch_pending(failures.of_intent("dispatch")))

        def reconcile() -> tuple[ReconcileResult, ...]:
            return tuple(self.reconciler.reconcile_placed(failures.of_intent("reconcile")))

        now = self.exits.clock.now()
        fired, time_failures = step("time_exits", lambda: self.monitor.fire_due(now)) or ([], [])
        failures.extend(time_failures)
        entries = step("open", lambda: tuple(self.opener.open_pending())) or ()
        watched = step("watch", self.monitor.catch_up) or ()
        dispatched = step("dispatch", dispatch) or ()
        reconciled = step("reconcile", reconcile) or ()
        # A protective exit that waited for the TARGET it pre-empted is decided once the
        # reconcile above has settled the cancel, and sent at once.
        decided = step("decide", self.exits.replay) or _NOT_DECIDED
        if decided.signals_finished:
            dispatched += step("dispatch", dispatch) or ()
        closing = failures.of_intent("close")
        closed = (step("close", lambda: self.close_filled(closing)) or ()) if close else ()
        return PassReport(
            time_exits=tuple(fired),
            entries=entries,
            watched=watched,
            dispatched=dispatched,
            reconciled=reconciled,
            decided=decided,
            closed=closed,
            failures=tuple(failures),
        )

    def close_filled(self, on_error: IntentErrorHandler | None = None) -> tuple[int, ...]:
        """Close the trades whose exit is FILLED and stop watching them."""
        results = self.closer.close_filled(on_error=on_error)
        closed = tuple(result.trade_id for result in results if result.closed)
        for trade_id in closed:
            self.monitor.untrack(trade_id)
        return closed

    def on_tick(self, symbol: str, price: Decimal, at: datetime) -> list[ExitDetectionResult]:
        """A traded price from market data; safe from several threads."""
        return self.monitor.on_tick(symbol, price, at)

    def request_manual_exit(
        self, trade_id: int, at: datetime, price: Decimal | None = None
    ) -> ExitDetectionResult:
        """Exit one open trade now (a desk's kill switch)."""
        return self.monitor.request_manual_exit(trade_id, at, price)


class _Failures(list[TradeFailure]):
    """What failed in one pass; each failure is logged as it is recorded."""

    def step(self, name: str, run: Callable[[], _T]) -> _T | None:
        """``run()``, or None if it raised: a failed step must not stop the ones after it."""
        try:
            return run()
        except Exception as error:
            logger.error("trade loop step %s failed: %r", name, error, exc_info=error)
            self.append(TradeFailure(name, None, error))
            return None

    def of_intent(self, name: str) -> IntentErrorHandler:
        """A handler for one exit intent's failure inside a sweep (the sweep goes on)."""

        def report(intent_id: int, error: Exception) -> None:
            logger.error("%s failed for exit intent %s: %r", name, intent_id, error, exc_info=error)
            self.append(TradeFailure(name, None, error, exit_intent_id=intent_id))

        return report
