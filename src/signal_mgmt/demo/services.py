"""The library's services as a TMS would wire them, built fresh on every (re)start.

The host loop is the library's ``TradeLoop``; the demo adds only its own
wiring (an events file, a relay thread, simulated time). A restart is
``stop()`` then ``start_services()`` again: new engine, new service objects, a
new relay thread; then ``replay()`` rebuilds the exit detector from the
database and finishes whatever the previous instances left.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from signal_mgmt.entry.coordinator import EntryCoordinator
from signal_mgmt.entry.qualification import EntryQualificationService
from signal_mgmt.entry.service import SignalService
from signal_mgmt.execution.broker import BrokerGateway
from signal_mgmt.exit.settings import ExitSettings
from signal_mgmt.market.calendar import ExchangeCalendar
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.outbox.publishers.jsonl import JsonlPublisher
from signal_mgmt.outbox.relay import OutboxRelay
from signal_mgmt.outbox.store import outbox_counts
from signal_mgmt.outbox.thread import RelayThread
from signal_mgmt.settings import Settings
from signal_mgmt.tms.loop import PassReport, TradeLoop

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


@dataclass
class Services:
    engine: Engine
    signals: SignalService
    entry: EntryCoordinator
    loop: TradeLoop
    relay: RelayThread

    def __contains__(self, trade_id: object) -> bool:
        """Whether the exit monitor watches this trade."""
        return trade_id in self.loop.monitor

    @property
    def watched(self) -> int:
        return len(self.loop.monitor)

    def settle(self) -> PassReport:
        """One pass of the library's TradeLoop."""
        return self.loop.run_once()

    def replay(self) -> ReplayCounts:
        """What a TMS runs on start, before taking new work."""
        report = self.loop.replay()
        return ReplayCounts(
            signals_finished=report.signals_finished,
            deliveries_qualified=report.deliveries_qualified,
            trades_advanced=len(report.entries),
            exit_signals_finished=report.exits.signals_finished,
            exit_intents_decided=report.exits.intents_decided,
            exit_intents_dispatched=len(report.dispatched),
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
    settings: Settings,
    clock: ManualClock,
    calendar: ExchangeCalendar,
    broker: BrokerGateway,
    events_path: Path,
) -> Services:
    engine = settings.engine()
    exits = ExitSettings()
    loop = TradeLoop.build(engine, broker, clock, calendar, settings=exits, sleep=_no_wait)
    signals = SignalService(engine, clock, calendar)
    qualification = EntryQualificationService(
        engine, clock, calendar, entry_cutoff=exits.entry_cutoff_time
    )
    loop.entry = EntryCoordinator(signals, qualification, loop.opener, lanes=1)
    relay = OutboxRelay(engine, JsonlPublisher(events_path), clock=clock)
    return Services(
        engine=engine,
        signals=signals,
        entry=loop.entry,
        loop=loop,
        relay=RelayThread(relay, poll_interval=RELAY_POLL_SECONDS).start(),
    )
