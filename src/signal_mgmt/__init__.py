"""signal_mgmt: qualified, idempotent, auditable trading intents with a transactional outbox.

The names below are the public API. Everything else lives in its module (``signal_mgmt.outbox``,
``signal_mgmt.execution``, ...) for adapters, tools and tests that need the plumbing.
Importing this package creates no engine, session or thread.
"""

from signal_mgmt._version import __version__ as __version__
from signal_mgmt.entry import EntryCoordinator, SignalCandidate, SignalService
from signal_mgmt.entry.qualification import EntryQualificationService
from signal_mgmt.errors import (
    ConfigError,
    IllegalTransitionError,
    InvalidInputError,
    NotFoundError,
    PublishError,
    SignalMgmtError,
    StorageError,
    TransientStorageError,
)
from signal_mgmt.execution import BrokerGateway, BrokerUnavailableError, SimulatedBroker
from signal_mgmt.execution.exit_dispatcher import ExitIntentDispatcher
from signal_mgmt.execution.exit_reconciler import Reconciler
from signal_mgmt.exit.bricks import BrickRule
from signal_mgmt.exit.candidate import ExitCandidate
from signal_mgmt.exit.detector import ExitDetector
from signal_mgmt.exit.monitor import ExitMonitor
from signal_mgmt.exit.service import ExitIntentService
from signal_mgmt.exit.settings import ExitSettings, load_exit_settings
from signal_mgmt.market import ManualClock, MarketCalendar, SystemClock, nse_calendar
from signal_mgmt.models import Direction, ExitReason
from signal_mgmt.outbox.emit import emit
from signal_mgmt.outbox.events import Event
from signal_mgmt.outbox.inbox import Inbox
from signal_mgmt.outbox.publishers import InMemoryPublisher, Publisher, publisher_from_spec
from signal_mgmt.outbox.relay import OutboxRelay
from signal_mgmt.outbox.thread import RelayThread
from signal_mgmt.reference import ReferenceAdmin, ReferenceData
from signal_mgmt.reference.admin import InstrumentSpec, UserBrokerSpec
from signal_mgmt.settings import load_settings
from signal_mgmt.storage.db import make_engine
from signal_mgmt.storage.migrations import upgrade
from signal_mgmt.tms import TradeLoop, TradeOpener
from signal_mgmt.tms.close import TradeCloser

__all__ = [  # noqa: RUF022 - grouped by role, not sorted
    # wiring: engine and schema, time, exchange sessions, settings
    "make_engine",
    "upgrade",
    "SystemClock",
    "ManualClock",
    "MarketCalendar",
    "nse_calendar",
    "load_settings",
    "load_exit_settings",
    "ExitSettings",
    # services, in pipeline order: entry
    "SignalService",
    "EntryCoordinator",
    "EntryQualificationService",
    # services: exit
    "ExitDetector",
    "ExitMonitor",
    "ExitIntentService",
    "ExitIntentDispatcher",
    "Reconciler",
    # services: trades (the only writers of ``trades``)
    "TradeOpener",
    "TradeCloser",
    "TradeLoop",
    # services: outbox (write an event; drain it; consume it once)
    "emit",
    "OutboxRelay",
    "RelayThread",
    "Inbox",
    # ports the host implements or swaps, and the adapters shipped for them
    "Publisher",
    "InMemoryPublisher",
    "publisher_from_spec",
    "BrokerGateway",
    "SimulatedBroker",
    "ReferenceData",
    "ReferenceAdmin",
    # values passed in
    "SignalCandidate",
    "ExitCandidate",
    "Event",
    "Direction",
    "ExitReason",
    "BrickRule",
    "InstrumentSpec",
    "UserBrokerSpec",
    # errors: one root, caught by the host
    "SignalMgmtError",
    "ConfigError",
    "InvalidInputError",
    "NotFoundError",
    "IllegalTransitionError",
    "StorageError",
    "TransientStorageError",
    "PublishError",
    "BrokerUnavailableError",
]
