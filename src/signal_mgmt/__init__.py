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
    "Inbox",
    "InstrumentSpec",
    "IntegrityViolation",
    "IntentResult",
    "InvalidInputError",
    "NotFoundError",
    "OpenResult",
    "OrderRequest",
    "OutboxMessage",
    "PublishError",
    "PublishResult",
    "ReferenceAdmin",
    "ReferenceData",
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
    "place_with_reconcile",
]
