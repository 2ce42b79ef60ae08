"""A simulated NSE trading day, driven the way a TMS drives the library.

Ticks feed two consumers: the breakout detector (new signals -> the ENTRY path
through ``EntryCoordinator``) and the ``ExitDetector`` (exit candidates -> the
``ExitIntentService``). A settle pass (dispatcher, reconciler, closer) runs
after exit activity and every few minutes. Time is a ``ManualClock`` set to each
tick's timestamp, so the day replays identically for a seed.

Faults on purpose (``faults.FaultPlan``): a broker outage, seeded rejections
and unknown outcomes at the broker, and a crash-and-restart: in the first step
after the restart time that detects a breakout (or, failing one within an hour,
any busy step), work stops half way (signals published but their deliveries
not qualified, exits decided but not dispatched); new service instances on the
same database then finish it through their replay sweeps.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

from signal_mgmt.demo.accounts import DemoAccount, pick_symbols, setup_reference
from signal_mgmt.demo.detector import Breakout, OpeningRangeBreakout
from signal_mgmt.demo.faults import FaultCounts, FaultPlan, FaultyBroker
from signal_mgmt.demo.invariants import (
    OutboxBaseline,
    live_exit_violations,
    position_violations,
)
from signal_mgmt.demo.sample import load_sample_instruments
from signal_mgmt.demo.services import ReplayCounts, Services, start_services
from signal_mgmt.demo.ticks import Tick, TickProfile, session_ticks
from signal_mgmt.entry.candidate import SignalCandidate
from signal_mgmt.errors import InvalidInputError
from signal_mgmt.execution.simulated import SimulatedBroker
from signal_mgmt.exit.service import ExitDetectionResult, ExitOutcome
from signal_mgmt.exit.store import load_open_trades
from signal_mgmt.market.calendar import ExchangeCalendar, Session, nse_calendar
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import Direction
from signal_mgmt.reference.admin import ReferenceAdmin
from signal_mgmt.settings import Settings
from signal_mgmt.storage.db import transaction

SETTLE_EVERY = timedelta(minutes=5)
FAULTS_STOP = time(15, 10)
"""No injected faults after this (exchange-local): the 15:15 square-off must finish."""
FINAL_PASSES = 10
MANUAL_EXIT_AT = time(14, 30)
CRASH_ON_ENTRY_FOR = timedelta(hours=1)
"""For this long after the restart time the crash waits for a breakout, so that the
replay has entry work; then any busy step will do."""
RESTART_AT_THE_LATEST = timedelta(minutes=90)


@dataclass(frozen=True, slots=True)
class DemoConfig:
    day: date
    settings: Settings
    events_path: Path
    seed: int = 7
    symbols: int = 20
    users: int = 6
    tick_step: timedelta = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class StepStatus:
    """What the progress display shows after each step of the day."""

    at: datetime
    step: int
    steps: int
    signals: int
    open_trades: int
    closed_trades: int


@dataclass(slots=True)
class RunCounts:
    ticks: int = 0
    breakouts: int = 0
    exit_candidates: int = 0
    exits_suppressed: int = 0
    restarts: int = 0
    manual_exits: int = 0
    settle_passes: int = 0
    live_exit_violations: int = 0
    position_violations: int = 0
    loop_failures: int = 0
    restart_replay: ReplayCounts | None = None
    faults: FaultCounts = field(default_factory=FaultCounts)


@dataclass(frozen=True, slots=True)
class DemoRun:
    """What ``report`` needs besides the database: the run's own counts and cast."""

    config: DemoConfig
    session: Session
    accounts: tuple[DemoAccount, ...]
    counts: RunCounts
    plan: FaultPlan
    baseline: OutboxBaseline


def trading_session(calendar: ExchangeCalendar, day: date) -> Session:
    """The day's session, or a clear refusal for a holiday or a weekend."""
    session = calendar.session(day)
    if session is None:
        why = calendar.holidays.get(day, "weekend")
        raise InvalidInputError(
            f"{day.isoformat()} is not an NSE trading day ({why}); pick another --date",
            field="date",
            value=day,
        )
    return session


class TradingDay:
    def __init__(
        self, config: DemoConfig, on_step: Callable[[StepStatus], None] | None = None
    ) -> None:
        self.config = config
        self.on_step = on_step
        self.calendar = nse_calendar()
        self.session = trading_session(self.calendar, config.day)
        self.instruments = pick_symbols(load_sample_instruments(), config.symbols)
        self.plan = FaultPlan.for_day(self.calendar, config.day)
        self.clock = ManualClock(self.session.open_at - timedelta(minutes=15))
        self.market = SimulatedBroker({i.symbol: i.reference_price for i in self.instruments})
        quiet = self.calendar.at_local(config.day, FAULTS_STOP)
        self.broker = FaultyBroker(self.market, self.plan, self.clock, config.seed, quiet)
        self.counts = RunCounts(faults=self.broker.counts)
        self.accounts: list[DemoAccount] = []
        self._marked_down = False
        self._manual_exit_at = self.calendar.at_local(config.day, MANUAL_EXIT_AT)
        self._manual_exit_done = False
        self._restart_pending = False
        self._signals = 0
        self._closed = 0

    def run(self) -> DemoRun:
        """Play the whole session on the config's (migrated) database."""
        engine = self.config.settings.engine()
        try:
            with transaction(engine) as conn:
                baseline = OutboxBaseline.capture(conn, self.config.events_path)
        finally:
            engine.dispose()
        self._services = self._start()
        try:
            self.accounts = setup_reference(
                self._services.engine, self.clock, self.instruments, self.config.users
            )
            self._services.replay()  # a previous run may have crashed: finish it first
            self._close_the_day(self._play(self._services))
        finally:
            self._services.stop()  # the current instances, also after a restart
        accounts = tuple(self.accounts)
        return DemoRun(self.config, self.session, accounts, self.counts, self.plan, baseline)

    # ------------------------------------------------------------------ the day

    def _start(self) -> Services:
        return start_services(
            self.config.settings,
            self.clock,
            self.calendar,
            self.broker,
            self.config.events_path,
        )

    def _play(self, services: Services) -> Services:
        profile = TickProfile(step=self.config.tick_step)
        steps = int((self.session.close_at - self.session.open_at) / profile.step)
        breakout = OpeningRangeBreakout(self.session)
        ticks = session_ticks(self.instruments, self.session, self.config.seed, profile)
        last_settle = self.session.open_at
        for step, (at, group) in enumerate(itertools.groupby(ticks, key=lambda t: t.at), 1):
            self.clock.set(at)
            self._outage(services, at)
            self._restart_pending = self._restart_pending or (
                self.counts.restarts == 0 and at >= self.plan.restart_at
            )
            busy = entered = False
            for tick in group:
                self.counts.ticks += 1
                self.market.set_price(tick.symbol, tick.price)
                found = breakout.on_tick(tick)
                if found is not None:
                    self._enter(services, found)
                    busy = entered = True
                busy = self._exit_tick(services, tick) or busy
            if not self._manual_exit_done and at >= self._manual_exit_at:
                busy = self._manual_exit(services, at) or busy
            waited = at - self.plan.restart_at
            if self._restart_pending and (
                entered
                or (busy and waited >= CRASH_ON_ENTRY_FOR)
                or waited >= RESTART_AT_THE_LATEST
            ):
                services = self._restart(services)
            elif busy or at - last_settle >= SETTLE_EVERY:
                self._settle(services)
                last_settle = at
            if self.on_step is not None:
                self.on_step(
                    StepStatus(at, step, steps, self._signals, services.watched, self._closed)
                )
        return services

    def _enter(self, services: Services, found: Breakout) -> None:
        self.counts.breakouts += 1
        candidate = SignalCandidate(
            symbol=found.symbol,
            direction=Direction(found.direction),
            confluence_type=found.confluence_type,
            detected_at=found.detected_at,
            effective_floor=found.effective_floor,
            effective_ceiling=found.effective_ceiling,
            metadata={"source": "demo opening-range breakout", "price": str(found.price)},
        )
        if self._restart_pending:
            # Crash window: the signal commits, its deliveries wait for the replay.
            services.signals.publish(candidate)
        else:
            services.entry.process(candidate)
            services.loop.monitor.catch_up()  # watch the new trades before the next tick
        self._signals += 1

    def _exit_tick(self, services: Services, tick: Tick) -> bool:
        return self._count_exits(services.loop.on_tick(tick.symbol, tick.price, tick.at))

    def _count_exits(self, results: list[ExitDetectionResult]) -> bool:
        recorded = False
        for result in results:
            self.counts.exit_candidates += 1
            if result.outcome is ExitOutcome.SUPPRESSED:
                self.counts.exits_suppressed += 1
            else:
                recorded = True
        return recorded

    def _manual_exit(self, services: Services, at: datetime) -> bool:
        """The host forces one exit (a desk's kill switch): the oldest open trade goes."""
        self._manual_exit_done = True
        watched = (t for t, _ in load_open_trades(services.engine) if t.trade_id in services)
        trade = next(watched, None)
        if trade is None:
            return False
        self.counts.manual_exits += 1
        return self._count_exits([services.loop.request_manual_exit(trade.trade_id, at)])

    def _restart(self, services: Services) -> Services:
        """The crash: drop every service instance, start new ones, let them replay."""
        services.stop()
        services = self._services = self._start()
        self.counts.restarts += 1
        self.counts.restart_replay = services.replay()
        self._restart_pending = False
        return services

    def _settle(self, services: Services) -> None:
        report = services.settle()
        self._closed += len(report.closed)
        self.counts.loop_failures += len(report.failures)
        self.counts.settle_passes += 1
        with transaction(services.engine) as conn:
            self.counts.live_exit_violations += live_exit_violations(conn)
            self.counts.position_violations += position_violations(conn, self.market.orders)

    def _outage(self, services: Services, at: datetime) -> None:
        down = self.plan.broker_down(at)
        if down == self.market.is_connected():
            (self.market.disconnect if down else self.market.connect)()
        marked = self.plan.marked_down(at)
        if marked != self._marked_down:
            admin = ReferenceAdmin(services.engine, self.clock)
            for account in self.accounts:
                admin.set_broker_state(account.user_broker_id, connected=not marked)
            self._marked_down = marked

    def _close_the_day(self, services: Services) -> None:
        """After the last tick: settle until nothing is in flight, then drain the outbox."""
        self.clock.set(self.session.close_at)
        for _ in range(FINAL_PASSES):
            self._settle(services)
            self.clock.advance(timedelta(minutes=1))  # lets dispatch leases run out
        services.drain_outbox(self.clock)
