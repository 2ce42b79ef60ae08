"""A TMS as a host wires it: the library's TradeLoop and the ENTRY path on one broker."""

from __future__ import annotations

from sqlalchemy import Engine

from signal_mgmt import TradeLoop
from signal_mgmt.entry.coordinator import EntryCoordinator
from signal_mgmt.entry.qualification import EntryQualificationService
from signal_mgmt.entry.service import SignalService
from signal_mgmt.execution.broker import BrokerGateway
from signal_mgmt.exit.settings import ExitSettings
from signal_mgmt.market.calendar import nse_calendar
from signal_mgmt.market.clock import ManualClock


def no_wait(_seconds: float) -> None:
    """Broker retries in simulated time: the next attempt is the next call."""


def start_tms(
    engine: Engine,
    clock: ManualClock,
    broker: BrokerGateway,
    settings: ExitSettings | None = None,
) -> tuple[TradeLoop, EntryCoordinator]:
    """New service instances (a started or restarted process) on ``engine``."""
    settings = settings or ExitSettings()
    calendar = nse_calendar()
    loop = TradeLoop.build(engine, broker, clock, calendar, settings=settings, sleep=no_wait)
    qualification = EntryQualificationService(
        engine, clock, calendar, entry_cutoff=settings.entry_cutoff_time
    )
    signals = SignalService(engine, clock, calendar)
    loop.entry = EntryCoordinator(signals, qualification, loop.opener, lanes=1)
    return loop, loop.entry
