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
instance's, finishes each row exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from signal_mgmt.execution.broker import BrokerGateway, GatewayConnectivity
from signal_mgmt.execution.exit_dispatcher import DispatchResult, ExitIntentDispatcher
from signal_mgmt.execution.exit_reconciler import Reconciler, ReconcileResult
from signal_mgmt.exit.detector import ExitDetector
from signal_mgmt.exit.monitor import ExitMonitor
from signal_mgmt.exit.service import ExitDetectionResult, ExitIntentService, ExitReplayReport
from signal_mgmt.exit.settings import ExitSettings, load_exit_settings
from signal_mgmt.market.calendar import MarketCalendar, nse_calendar
from signal_mgmt.market.clock import Clock
from signal_mgmt.tms.close import TradeCloser
from signal_mgmt.tms.open import OpenResult, TradeOpener

if TYPE_CHECKING:  # entry/ imports tms/ at runtime; a type is all the loop needs
    from signal_mgmt.entry.coordinator import EntryCoordinator


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
            opener=TradeOpener(engine, clock, broker, sleep=sleep),
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
        time_exits = tuple(self.monitor.on_time(self.exits.clock.now()))
        entries = tuple(self.opener.open_pending())
        watched = self.monitor.catch_up()
        dispatched = tuple(self.dispatcher.dispatch_pending())
        reconciled = tuple(self.reconciler.reconcile_placed())
        # A protective exit that waited for the TARGET it pre-empted is decided once the
        # reconcile above has settled the cancel, and sent at once.
        decided = self.exits.replay()
        if decided.signals_finished:
            dispatched += tuple(self.dispatcher.dispatch_pending())
        return PassReport(
            time_exits=time_exits,
            entries=entries,
            watched=watched,
            dispatched=dispatched,
            reconciled=reconciled,
            decided=decided,
            closed=self.close_filled() if close else (),
        )

    def close_filled(self) -> tuple[int, ...]:
        """Close the trades whose exit is FILLED and stop watching them."""
        closed = tuple(result.trade_id for result in self.closer.close_filled() if result.closed)
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
