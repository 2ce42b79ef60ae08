"""signal_mgmt: qualified, idempotent, auditable trading intents with a transactional outbox.

Importing this package creates no engine, session or thread.
"""

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
from signal_mgmt.outbox.cloudevents import CloudEvent, CloudEventFormat
from signal_mgmt.outbox.emit import emit
from signal_mgmt.outbox.events import Event, OutboxMessage
from signal_mgmt.outbox.inbox import Inbox

__all__ = [
    "CloudEvent",
    "CloudEventFormat",
    "ConfigError",
    "Event",
    "IllegalTransitionError",
    "Inbox",
    "IntegrityViolation",
    "InvalidInputError",
    "NotFoundError",
    "OutboxMessage",
    "PublishError",
    "SignalMgmtError",
    "StorageError",
    "TransientStorageError",
    "emit",
]
