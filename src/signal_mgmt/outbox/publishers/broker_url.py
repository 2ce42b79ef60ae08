"""Options shared by the broker publishers' URLs, and name templates.

A broker URL may carry our options in its query string (``?subject=...&source=...``);
they are taken out before the URL reaches the client library, whose own query
options (pika's ``heartbeat``, redis-py's ``socket_timeout``, ...) pass through.
"""

from __future__ import annotations

import string
from collections.abc import Collection
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from signal_mgmt.errors import ConfigError, PublishError
from signal_mgmt.outbox.cloudevents import WireFormat
from signal_mgmt.outbox.events import OutboxMessage
from signal_mgmt.redaction import redact_url

TEMPLATE_FIELDS = frozenset({"event_type", "aggregate_type"})
"""What a subject / routing key / stream template may use: both are validated names."""


def split_options(url: str, names: Collection[str]) -> tuple[str, dict[str, str]]:
    """Return ``url`` without our ``names`` in its query, and those options."""
    parts = urlsplit(url)
    ours: dict[str, str] = {}
    theirs: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in names:
            if name in ours:
                raise ConfigError(f"option {name!r} given twice in {redact_url(url)}")
            ours[name] = value
        else:
            theirs.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(theirs))), ours


def positive_float(options: dict[str, str], name: str, default: float) -> float:
    raw = options.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"option {name} must be a number of seconds, got {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"option {name} must be positive and finite, got {raw!r}")
    return value


def positive_int(options: dict[str, str], name: str) -> int | None:
    raw = options.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) == 0:
        raise ConfigError(f"option {name} must be a positive integer, got {raw!r}")
    return int(raw)


def check_template(template: str, what: str) -> str:
    """Refuse a template with unknown fields or bad syntax now, not at the first publish."""
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as error:
        raise ConfigError(f"bad {what} template {template!r}: {error}") from None
    unknown = fields - TEMPLATE_FIELDS
    if unknown:
        raise ConfigError(
            f"{what} template {template!r} uses {sorted(unknown)}; "
            f"allowed: {sorted(TEMPLATE_FIELDS)}"
        )
    if not template:
        raise ConfigError(f"{what} template must not be empty")
    return template


def encode_or_refuse(wire_format: WireFormat, message: OutboxMessage) -> bytes:
    """The message's body; one that cannot be serialized is a permanent error (DEAD):
    no retry changes the message."""
    try:
        return wire_format.encode(message)
    except (TypeError, ValueError) as error:
        raise PublishError(
            f"cannot serialize event {message.event_id}: {error!r}", transient=False
        ) from error


def headers_or_refuse(wire_format: WireFormat, message: OutboxMessage) -> dict[str, str]:
    """The message's transport headers; headers that are no JSON object (a row written
    by plain SQL) are a permanent error (DEAD), like a body that cannot be serialized."""
    try:
        return wire_format.headers(message)
    except (TypeError, ValueError) as error:
        raise PublishError(
            f"cannot build the headers of event {message.event_id}: {error!r}", transient=False
        ) from error


def render(template: str, message: OutboxMessage) -> str:
    return template.format(event_type=message.event_type, aggregate_type=message.aggregate_type)
