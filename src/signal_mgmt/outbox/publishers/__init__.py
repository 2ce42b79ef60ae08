"""Publishers shipped with the library, and the SPEC parser the CLI uses."""

from signal_mgmt.outbox.publishers.base import Publisher, close_publisher
from signal_mgmt.outbox.publishers.jsonl import JsonlPublisher
from signal_mgmt.outbox.publishers.log import LoggingPublisher
from signal_mgmt.outbox.publishers.memory import InMemoryPublisher
from signal_mgmt.outbox.publishers.spec import publisher_from_spec

__all__ = [
    "InMemoryPublisher",
    "JsonlPublisher",
    "LoggingPublisher",
    "Publisher",
    "close_publisher",
    "publisher_from_spec",
]
