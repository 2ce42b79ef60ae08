"""Publisher SPECs, as the CLI takes them: ``log``, ``jsonl:PATH``, ``nats://``, ``amqp://``, ..."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

from signal_mgmt.errors import ConfigError
from signal_mgmt.outbox.publishers.base import Publisher
from signal_mgmt.outbox.publishers.jsonl import JsonlPublisher
from signal_mgmt.outbox.publishers.log import LoggingPublisher
from signal_mgmt.redaction import redact_url

# scheme -> (module with ``from_url(url) -> Publisher``, the pip extra that provides its client)
BROKER_MODULES = {
    "nats": ("signal_mgmt.outbox.publishers.nats", "nats"),
    "amqp": ("signal_mgmt.outbox.publishers.rabbitmq", "rabbitmq"),
    "amqps": ("signal_mgmt.outbox.publishers.rabbitmq", "rabbitmq"),
    "redis": ("signal_mgmt.outbox.publishers.redis", "redis"),
    "rediss": ("signal_mgmt.outbox.publishers.redis", "redis"),
}

SPEC_HELP = "log | jsonl:PATH | nats://HOST:PORT | amqp://USER:PASS@HOST | redis://HOST:PORT"


def publisher_from_spec(spec: str) -> Publisher:
    """Build the publisher a SPEC names; anything else is a ``ConfigError``."""
    if not isinstance(spec, str):
        raise ConfigError(f"publisher SPEC must be a string, got {type(spec).__name__}")
    if "\x00" in spec:  # refused now, not at the first publish (a path, a URL)
        raise ConfigError("publisher SPEC contains a NUL character")
    if spec == "log":
        return LoggingPublisher()
    if spec.startswith("jsonl:"):
        path = spec.removeprefix("jsonl:")
        if not path:
            raise ConfigError("publisher jsonl:PATH needs a file path")
        return JsonlPublisher(path)
    scheme, sep, _ = spec.partition("://")
    if sep and scheme in BROKER_MODULES:
        try:
            urlsplit(spec).port  # noqa: B018 - parses the host and port: '[::1' fails here
        except ValueError:
            raise ConfigError(f"bad publisher URL {redact_url(spec)!r}") from None
        return _broker_factory(scheme)(spec)
    raise ConfigError(f"unknown publisher {redact_url(spec)!r}; use {SPEC_HELP}")


def _broker_factory(scheme: str) -> Callable[[str], Publisher]:
    module_name, extra = BROKER_MODULES[scheme]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(
            f"publisher {scheme}:// is unavailable ({error}); "
            f"install it with: pip install 'signal-mgmt[{extra}]'"
        ) from None
    return cast(Callable[[str], Publisher], module.from_url)
