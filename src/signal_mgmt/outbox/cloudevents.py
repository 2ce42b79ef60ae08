"""The wire format of the broker publishers: CloudEvents 1.0, structured JSON mode.

One outbox row becomes one JSON object (the envelope) as the message body:

    specversion      "1.0"
    id               event_id (the deterministic uuid5, so re-deliveries carry the same id)
    source           configurable, default "signal-mgmt"
    type             event_type
    subject          aggregate_id
    time             created_at (the commit-side time of the fact), RFC 3339 UTC
    datacontenttype  "application/json"
    partitionkey     partition_key   (extension: the ordering key)
    aggregatetype    aggregate_type  (extension)
    data             payload

Transport headers repeat the ordering key (``partitionkey``) so a consumer can
route or shard without parsing the body; the host's own event headers (e.g.
``traceparent``) travel as headers too. docs/outbox-adapters.md has the table.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from signal_mgmt.errors import InvalidInputError
from signal_mgmt.outbox.events import OutboxMessage

SPEC_VERSION = "1.0"
DEFAULT_SOURCE = "signal-mgmt"
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
DATA_CONTENT_TYPE = "application/json"
PARTITION_KEY_HEADER = "partitionkey"
"""The transport header (NATS header, AMQP header, Redis entry field) with the ordering key."""

_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")  # CloudEvents 1.0: lowercase alphanumeric
_REQUIRED = ("specversion", "id", "source", "type")


class WireFormat(Protocol):
    """How a publisher turns an outbox message into a body and transport headers."""

    @property
    def content_type(self) -> str: ...

    def encode(self, message: OutboxMessage) -> bytes: ...

    def headers(self, message: OutboxMessage) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class CloudEvent:
    """A decoded envelope, as a consumer sees it."""

    id: uuid.UUID
    source: str
    type: str
    subject: str | None
    time: datetime | None
    partition_key: str | None
    aggregate_type: str | None
    data: Any
    extensions: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CloudEventFormat:
    """CloudEvents 1.0 structured JSON: the default wire format of every broker publisher."""

    source: str = DEFAULT_SOURCE
    content_type: str = CONTENT_TYPE

    def __post_init__(self) -> None:
        if not self.source:
            raise InvalidInputError("CloudEvents source must not be empty", field="source")

    def envelope(self, message: OutboxMessage) -> dict[str, Any]:
        return {
            "specversion": SPEC_VERSION,
            "id": str(message.event_id),
            "source": self.source,
            "type": message.event_type,
            "subject": message.aggregate_id,
            "time": _rfc3339(message.created_at),
            "datacontenttype": DATA_CONTENT_TYPE,
            "partitionkey": message.partition_key,
            "aggregatetype": message.aggregate_type,
            "data": message.payload,
        }

    def encode(self, message: OutboxMessage) -> bytes:
        envelope = self.envelope(message)
        return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()

    def headers(self, message: OutboxMessage) -> dict[str, str]:
        if not isinstance(message.headers, dict):  # a plain-SQL row: JSON null, [], "..."
            raise TypeError(f"headers must be a JSON object, not {type(message.headers).__name__}")
        # The host's headers first, so they can never overwrite the ordering key.
        headers = {str(name): str(value) for name, value in message.headers.items()}
        headers[PARTITION_KEY_HEADER] = message.partition_key
        return headers


def decode(body: bytes | str) -> CloudEvent:
    """Parse a structured-mode envelope; a malformed one is an ``InvalidInputError``."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInputError(f"not a JSON CloudEvent: {error}", field="body") from None
    if not isinstance(document, dict):
        raise InvalidInputError("a CloudEvent is a JSON object", field="body", value=document)
    missing = [name for name in _REQUIRED if not isinstance(document.get(name), str)]
    if missing:
        raise InvalidInputError(f"CloudEvent lacks {', '.join(missing)}", field=missing[0])
    if document["specversion"] != SPEC_VERSION:
        raise InvalidInputError(
            "unsupported CloudEvents specversion",
            field="specversion",
            value=document["specversion"],
        )
    try:
        event_id = uuid.UUID(document["id"])
    except ValueError:
        raise InvalidInputError(
            "CloudEvent id is not a UUID", field="id", value=document["id"]
        ) from None
    known = {"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data"}
    extensions = {name: value for name, value in document.items() if name not in known}
    bad = [name for name in extensions if not _EXTENSION_NAME.match(name)]
    if bad:
        raise InvalidInputError("invalid CloudEvents attribute name", field=bad[0])
    return CloudEvent(
        id=event_id,
        source=document["source"],
        type=document["type"],
        subject=document.get("subject"),
        time=_parse_time(document.get("time")),
        partition_key=extensions.get("partitionkey"),
        aggregate_type=extensions.get("aggregatetype"),
        data=document.get("data"),
        extensions=extensions,
    )


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidInputError(
            "CloudEvent time is not RFC 3339", field="time", value=value
        ) from None
    if moment.tzinfo is None:
        raise InvalidInputError("CloudEvent time lacks a UTC offset", field="time", value=value)
    return moment
