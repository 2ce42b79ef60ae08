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
from signal_mgmt.qualification.entry_service import EntryQualificationService, IntentResult
from signal_mgmt.reference import (
    InstrumentSpec,
    ReferenceAdmin,
    ReferenceData,
    TableReferenceData,
    UserBrokerSpec,
)
from signal_mgmt.tms import OpenResult, TradeOpener

__all__ = [
    "BrokerGateway",
    "BrokerOrder",
    "BrokerUnavailableError",
    "CloudEvent",
    "CloudEventFormat",
    "ConfigError",
    "EntryCoordinator",
    "EntryOutcome",
    "EntryQualificationService",
    "Event",
    "IllegalTransitionError",
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
    "OrderRequest",
    "OutboxCounts",
    "OutboxMessage",
    "OutboxRelay",
    "PublishError",
    "PublishResult",
    "Publisher",
    "ReferenceAdmin",
    "ReferenceData",
    "RelayHealth",
    "RelayThread",
    "ReplayReport",
    "SignalCandidate",
    "SignalMgmtError",
    "SignalService",
    "SimulatedBroker",
    "StorageError",
    "TableReferenceData",
    "TradeOpener",
    "TransientStorageError",
    "UserBrokerSpec",
    "emit",
    "outbox_counts",
    "place_with_reconcile",
    "publisher_from_spec",
]
