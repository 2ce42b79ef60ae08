"""The library's services as a TMS would wire them, built fresh on every (re)start.

A restart is ``stop()`` then ``start_services()`` again: new engine, new
service objects, an empty exit detector rebuilt from the database, a new relay
thread; then ``replay()`` finishes whatever the previous instances left.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from signal_mgmt.entry.coordinator import EntryCoordinator
from signal_mgmt.entry.qualification import EntryQualificationService
from signal_mgmt.entry.service import SignalService
from signal_mgmt.execution.broker import BrokerGateway
from signal_mgmt.execution.exit_dispatcher import ExitIntentDispatcher
from signal_mgmt.execution.exit_reconciler import Reconciler
from signal_mgmt.exit.detector import ExitDetector
from signal_mgmt.exit.monitor import ExitMonitor
from signal_mgmt.exit.service import ExitIntentService
from signal_mgmt.exit.settings import ExitSettings
from signal_mgmt.market.calendar import ExchangeCalendar
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import TradeStatus
from signal_mgmt.outbox.publishers.jsonl import JsonlPublisher
from signal_mgmt.outbox.relay import OutboxRelay
from signal_mgmt.outbox.store import outbox_counts
from signal_mgmt.outbox.thread import RelayThread
from signal_mgmt.storage.db import make_engine
from signal_mgmt.tms.close import TradeCloser
from signal_mgmt.tms.open import OpenResult, TradeOpener

RELAY_POLL_SECONDS = 0.2
RELAY_DRAIN_TIMEOUT = 60.0


def _no_wait(_seconds: float) -> None:
    """Broker retry backoff in simulated time: the next attempt is the next pass."""


@dataclass(frozen=True, slots=True)
class ReplayCounts:
    signals_finished: int
    deliveries_qualified: int
    trades_advanced: int
    exit_signals_finished: int
    exit_intents_decided: int
    exit_intents_dispatched: int


@dataclass(frozen=True, slots=True)
class SettleCounts:
    opened: tuple[int, ...]
    closed: tuple[int, ...]


@dataclass
class Services:
    engine: Engine
    signals: SignalService
    entry: EntryCoordinator
    exits: ExitIntentService
    monitor: ExitMonitor
    opener: TradeOpener
    dispatcher: ExitIntentDispatcher
    reconciler: Reconciler
    closer: TradeCloser
    relay: RelayThread

    def __contains__(self, trade_id: object) -> bool:
        """Whether the exit monitor watches this trade."""
        return trade_id in self.monitor.detector

    @property
    def watched(self) -> int:
        return len(self.monitor.detector)

    def track_opened(self, results: Iterable[OpenResult]) -> tuple[int, ...]:
        """Hand trades that just became OPEN to the exit monitor; returns their ids."""
        opened = tuple(
            r.trade_id
            for r in results
            if r.trade_id is not None
            and r.trade_status is TradeStatus.OPEN
            and r.trade_id not in self.monitor.detector
        )
        for trade_id in opened:
            self.monitor.track(trade_id)
        return opened

    def settle(self) -> SettleCounts:
        """One pass of the TMS loop: pending entries, exit orders, fills, closes."""
        opened = self.track_opened(self.opener.open_pending())
        self.dispatcher.dispatch_pending()
        self.reconciler.reconcile_placed()
        closed = tuple(result.trade_id for result in self.closer.close_filled() if result.closed)
        for trade_id in closed:
            self.monitor.untrack(trade_id)
        return SettleCounts(opened=opened, closed=closed)

    def replay(self) -> ReplayCounts:
        """What a TMS runs on start, before taking new work."""
        entry = self.entry.replay()
        self.track_opened(entry.trades_advanced)
        exits = self.exits.replay()
        dispatched = self.dispatcher.dispatch_pending()
        self.settle()
        return ReplayCounts(
            signals_finished=len(entry.signals_finished),
            deliveries_qualified=len(entry.intents_created),
            trades_advanced=len(entry.trades_advanced),
            exit_signals_finished=exits.signals_finished,
            exit_intents_decided=exits.intents_decided,
            exit_intents_dispatched=len(dispatched),
        )

    def drain_outbox(self, clock: ManualClock) -> None:
        """Wait until the relay has published every pending event (real time, bounded)."""
        for _ in range(int(RELAY_DRAIN_TIMEOUT / RELAY_POLL_SECONDS)):
            counts = outbox_counts(self.engine, clock)
            if counts.pending + counts.in_flight == 0:
                return
            self.relay.wake()
            time.sleep(RELAY_POLL_SECONDS)
        raise TimeoutError(f"outbox not drained after {RELAY_DRAIN_TIMEOUT}s")

    def stop(self) -> None:
        self.relay.stop()
        self.entry.close()
        self.engine.dispose()


def start_services(
    database_url: str,
    clock: ManualClock,
    calendar: ExchangeCalendar,
    broker: BrokerGateway,
    events_path: Path,
) -> Services:
    engine = make_engine(database_url)
    opener = TradeOpener(engine, clock, broker, sleep=_no_wait)
    signals = SignalService(engine, clock, calendar)
    entry = EntryCoordinator(
        signals,
        EntryQualificationService(engine, clock, calendar),
        opener,
        lanes=1,
    )
    settings = ExitSettings()
    detector = ExitDetector(settings.condition(calendar), reemit_interval=settings.reemit_interval)
    exits = ExitIntentService(engine, clock, calendar, settings=settings)
    monitor = ExitMonitor(detector, exits)
    monitor.start()  # rebuilds the detector from the open trades in the database
    relay = OutboxRelay(engine, JsonlPublisher(events_path), clock=clock)
    return Services(
        engine=engine,
        signals=signals,
        entry=entry,
        exits=exits,
        monitor=monitor,
        opener=opener,
        dispatcher=ExitIntentDispatcher(engine, broker, clock, sleep=_no_wait),
        reconciler=Reconciler(engine, broker, clock),
        closer=TradeCloser(engine, clock),
        relay=RelayThread(relay, poll_interval=RELAY_POLL_SECONDS).start(),
    )
