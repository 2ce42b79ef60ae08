"""Event envelopes: what a service emits and what the relay hands a publisher."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    field_serializer,
    field_validator,
)

from signal_mgmt.market.clock import require_aware
from signal_mgmt.models import plain_decimal
from signal_mgmt.validation import InputModel

EVENT_NAMESPACE = uuid.UUID("6f1c2b5e-8d2a-5b7e-9c3f-4a1e0d9b7c21")
"""uuid5 namespace of every event id; changing it would re-identify every event."""

PayloadT = TypeVar("PayloadT", bound=BaseModel)

_NAME = r"^[A-Za-z][A-Za-z0-9_.\-]*$"

MAX_HEADERS_BYTES = 16 * 1024
"""Host headers per event, names and values in UTF-8. Brokers refuse far less than
absurd sizes for good (NATS: 64 KiB of headers; RabbitMQ: one frame, 128 KiB), and
such an event would go DEAD at the relay; refused at emit instead, nothing written."""


class EventPayload(BaseModel):
    """Base of event payloads: immutable, serialized to JSON in the outbox row."""

    model_config = ConfigDict(frozen=True)

    @field_serializer("*", mode="wrap")
    def _plain_decimals(
        self, value: Any, handler: SerializerFunctionWrapHandler, _info: SerializationInfo
    ) -> Any:
        """Every price and amount in one written form (``102``, ``97.7``, never ``102.00``
        or ``1E+2``), whatever the backend or the arithmetic left on the Decimal."""
        return handler(plain_decimal(value) if isinstance(value, Decimal) else value)


_NAMESPACE_SHA1 = hashlib.sha1(EVENT_NAMESPACE.bytes, usedforsecurity=False)


def event_id_hex(event_type: str, idempotency_key: str) -> str:
    """``event_id_for`` as 32 hex digits, computed without a ``uuid.UUID`` object: uuid5
    is SHA-1 of namespace + name with the version and variant bits set (RFC 4122 4.3)."""
    digest = _NAMESPACE_SHA1.copy()
    digest.update(f"{event_type}\x1f{idempotency_key}".encode())
    raw = bytearray(digest.digest()[:16])
    raw[6] = raw[6] & 0x0F | 0x50  # version 5
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    return raw.hex()


def event_id_for(event_type: str, idempotency_key: str) -> uuid.UUID:
    """Deterministic id: the same fact announced twice is the same event."""
    return uuid.UUID(event_id_hex(event_type, idempotency_key))


class Event(InputModel, Generic[PayloadT]):
    """An event about to be written to the outbox, with a typed payload.

    ``idempotency_key`` is the key of the fact the event announces (e.g. the
    signal's id); together with ``event_type`` it fixes ``event_id``.
    ``partition_key`` orders delivery: the events of one key are first-delivered
    in outbox id order, which is the commit order of their writers (``emit``
    holds a lock per key until the transaction ends), and within one ``emit``
    the order given. It defaults to ``aggregate_type:aggregate_id``.
    """

    event_type: str = Field(min_length=1, max_length=64, pattern=_NAME)
    aggregate_type: str = Field(min_length=1, max_length=64, pattern=_NAME)
    aggregate_id: str = Field(min_length=1, max_length=128)
    idempotency_key: str = Field(min_length=1, max_length=512)
    payload: PayloadT
    partition_key: str | None = Field(default=None, min_length=1, max_length=200)
    headers: dict[str, str] = Field(default_factory=dict)
    available_at: datetime | None = None

    @field_validator("payload", mode="before")
    @classmethod
    def _payload_model(cls, value: object) -> object:
        """A payload is an ``EventPayload`` instance; a dict would have no schema to keep."""
        if not isinstance(value, BaseModel):
            raise ValueError(f"payload must be an EventPayload, not {type(value).__name__}")
        return value

    @field_validator("headers")
    @classmethod
    def _headers_fit(cls, value: dict[str, str]) -> dict[str, str]:
        size = sum(len(name.encode()) + len(text.encode()) for name, text in value.items())
        if size > MAX_HEADERS_BYTES:
            raise ValueError(f"headers take {size} bytes, at most {MAX_HEADERS_BYTES}")
        return value

    @field_validator("available_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return None if value is None else require_aware(value, "available_at")

    @classmethod
    def trusted(cls, **fields: Any) -> Event[PayloadT]:
        """An event of the library's own, built without validation (``model_construct``):
        its fields come from values already checked at the public boundary or read
        back from the database. A host's event goes through the validating constructor."""
        # Every optional field given: pydantic's default lookup (a signature inspection
        # per ``default_factory`` use) costs more than the construction itself.
        defaults: dict[str, Any] = {"partition_key": None, "headers": {}, "available_at": None}
        return cls.model_construct(**(defaults | fields))

    @property
    def event_id(self) -> uuid.UUID:
        return event_id_for(self.event_type, self.idempotency_key)

    @property
    def key(self) -> str:
        return self.partition_key or f"{self.aggregate_type}:{self.aggregate_id}"


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A stored event as the relay reads it and a publisher receives it."""

    id: int
    event_id: uuid.UUID
    event_type: str
    aggregate_type: str
    aggregate_id: str
    partition_key: str
    payload: dict[str, Any]
    headers: dict[str, Any]
    created_at: datetime
    attempts: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (used by the JSONL and logging publishers)."""
        return {
            "id": self.id,
            "event_id": str(self.event_id),
            "event_type": self.event_type,
            "aggregate_type": self.aggregate_type,
            "aggregate_id": self.aggregate_id,
            "partition_key": self.partition_key,
            "payload": self.payload,
            "headers": self.headers,
            "created_at": self.created_at.isoformat(),
        }
