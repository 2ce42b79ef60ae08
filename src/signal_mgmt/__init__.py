"""signal_mgmt: qualified, idempotent, auditable trading intents with a transactional outbox.

Importing this package creates no engine, session or thread.
"""

from signal_mgmt.entry import (
    EntryCoordinator,
    EntryOutcome,
    PublishResult,
    ReplayReport,
    SignalCandidate,
    SignalService,
)
from signal_mgmt.entry.qualification import EntryQualificationService, IntentResult
from signal_mgmt.errors import (
    ConfigError,
    IllegalTransitionError,
    IntegrityViolation,
    InvalidInputError,
    NotFoundError,
    PublishError,
    SignalMgmtError,
    StorageError,
    TransientStorageError,
)
from signal_mgmt.execution import (
    BrokerGateway,
    BrokerOrder,
    BrokerUnavailableError,
    OrderRequest,
    SimulatedBroker,
    place_with_reconcile,
)
from signal_mgmt.execution.exit_dispatcher import DispatchResult, ExitIntentDispatcher
from signal_mgmt.execution.exit_reconciler import Reconciler, ReconcileResult
from signal_mgmt.exit.bricks import BrickRule
from signal_mgmt.exit.candidate import ExitCandidate, ExitCleared
from signal_mgmt.exit.conditions import (
    ExitCondition,
    OpenTrade,
    StopLoss,
    Target,
    TimeExit,
    TrailingStop,
)
from signal_mgmt.exit.detector import ExitDetector, TickOutcome
from signal_mgmt.exit.holds import ExitHolds, InMemoryExitHolds
from signal_mgmt.exit.monitor import ExitMonitor
from signal_mgmt.exit.service import (
    ExitDetectionResult,
    ExitIntentService,
    ExitOutcome,
    ExitReplayReport,
)
from signal_mgmt.exit.settings import ExitSettings, load_exit_settings
from signal_mgmt.exit.store import load_open_trades, rebuild_detector, save_water_marks
from signal_mgmt.models import ExitReason
from signal_mgmt.outbox.cloudevents import CloudEvent, CloudEventFormat
from signal_mgmt.outbox.emit import emit
from signal_mgmt.outbox.events import Event, OutboxMessage
from signal_mgmt.outbox.inbox import Inbox
from signal_mgmt.outbox.publishers import (
    InMemoryPublisher,
    JsonlPublisher,
    LoggingPublisher,
    Publisher,
    publisher_from_spec,
)
from signal_mgmt.outbox.relay import OutboxRelay
from signal_mgmt.outbox.store import OutboxCounts, outbox_counts
from signal_mgmt.outbox.thread import RelayHealth, RelayThread
from signal_mgmt.qualification.exit_rules import ExitRejectReason
from signal_mgmt.reference import (
    InstrumentSpec,
    ReferenceAdmin,
    ReferenceData,
    TableReferenceData,
    UserBrokerSpec,
)
from signal_mgmt.tms import OpenResult, TradeOpener
from signal_mgmt.tms.close import CloseResult, TradeCloser

__all__ = [
    "BrickRule",
    "BrokerGateway",
    "BrokerOrder",
    "BrokerUnavailableError",
    "CloseResult",
    "CloudEvent",
    "CloudEventFormat",
    "ConfigError",
    "DispatchResult",
    "EntryCoordinator",
    "EntryOutcome",
    "EntryQualificationService",
    "Event",
    "ExitCandidate",
    "ExitCleared",
    "ExitCondition",
    "ExitDetectionResult",
    "ExitDetector",
    "ExitHolds",
    "ExitIntentDispatcher",
    "ExitIntentService",
    "ExitMonitor",
    "ExitOutcome",
    "ExitReason",
    "ExitRejectReason",
    "ExitReplayReport",
    "ExitSettings",
    "IllegalTransitionError",
    "InMemoryExitHolds",
    "InMemoryPublisher",
    "Inbox",
    "InstrumentSpec",
    "IntegrityViolation",
    "IntentResult",
    "InvalidInputError",
    "JsonlPublisher",
    "LoggingPublisher",
    "NotFoundError",
    "OpenResult",
    "OpenTrade",
    "OrderRequest",
    "OutboxCounts",
    "OutboxMessage",
    "OutboxRelay",
    "PublishError",
    "PublishResult",
    "Publisher",
    "ReconcileResult",
    "Reconciler",
    "ReferenceAdmin",
    "ReferenceData",
    "RelayHealth",
    "RelayThread",
    "ReplayReport",
    "SignalCandidate",
    "SignalMgmtError",
    "SignalService",
    "SimulatedBroker",
    "StopLoss",
    "StorageError",
    "TableReferenceData",
    "Target",
    "TickOutcome",
    "TimeExit",
    "TradeCloser",
    "TradeOpener",
    "TrailingStop",
    "TransientStorageError",
    "UserBrokerSpec",
    "emit",
    "load_exit_settings",
    "load_open_trades",
    "outbox_counts",
    "place_with_reconcile",
    "publisher_from_spec",
    "rebuild_detector",
    "save_water_marks",
]
