"""How the broker publishers classify what goes wrong with one message (real brokers).

A message that cannot be serialized is a permanent error (the event goes DEAD, no retry
changes it); any other exception from inside a publisher is a bug and reaches the relay
as it is (it stops the relay), never a silent success.
"""

from __future__ import annotations

import dataclasses
import gc
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from broker_support import AMQP_URL, NATS_URL, REDIS_URL, message
from signal_mgmt.errors import PublishError
from signal_mgmt.outbox.cloudevents import CloudEventFormat, WireFormat
from signal_mgmt.outbox.events import OutboxMessage
from signal_mgmt.outbox.publishers.base import Publisher, close_publisher
from signal_mgmt.outbox.publishers.nats import NatsPublisher
from signal_mgmt.outbox.publishers.rabbitmq import RabbitMqPublisher
from signal_mgmt.outbox.publishers.redis import RedisStreamPublisher

pytestmark = pytest.mark.brokers


class FailingFormat:
    """A wire format whose ``encode`` raises ``error``."""

    content_type = CloudEventFormat().content_type

    def __init__(self, error: Exception) -> None:
        self.error = error

    def encode(self, message: OutboxMessage) -> bytes:
        raise self.error

    def headers(self, message: OutboxMessage) -> dict[str, str]:
        return CloudEventFormat().headers(message)


BUILDERS: dict[str, Callable[[WireFormat], Publisher]] = {
    "nats": lambda wire: NatsPublisher(NATS_URL, wire_format=wire),
    # the default exchange: nothing is declared on the shared broker
    "rabbitmq": lambda wire: RabbitMqPublisher(AMQP_URL, exchange="", wire_format=wire),
    "redis": lambda wire: RedisStreamPublisher(REDIS_URL, wire_format=wire),
}


@pytest.fixture(params=sorted(BUILDERS))
def build(request: pytest.FixtureRequest) -> Iterator[Callable[[WireFormat], Publisher]]:
    built: list[Publisher] = []

    def builder(wire: WireFormat) -> Publisher:
        built.append(BUILDERS[request.param](wire))
        return built[-1]

    yield builder
    for publisher in built:
        close_publisher(publisher)


def test_an_unserializable_message_is_a_permanent_error(
    build: Callable[[WireFormat], Publisher],
) -> None:
    publisher = build(FailingFormat(TypeError("Decimal is not JSON serializable")))
    with pytest.raises(PublishError) as raised:
        publisher.publish([message(1)])
    assert not raised.value.transient


@pytest.mark.parametrize("headers", [None, [], "s"])
def test_headers_that_are_no_object_are_a_permanent_error(
    build: Callable[[WireFormat], Publisher], headers: Any
) -> None:
    """A plain-SQL row's headers (JSON null, an array, a string) crashed every broker publisher."""
    publisher = build(CloudEventFormat())
    with pytest.raises(PublishError) as raised:
        publisher.publish([dataclasses.replace(message(1), headers=headers)])
    assert not raised.value.transient


def test_a_bug_inside_a_publisher_is_raised_as_it_is(
    build: Callable[[WireFormat], Publisher],
) -> None:
    publisher = build(FailingFormat(RuntimeError("bug in a wire format")))
    with pytest.raises(RuntimeError, match="bug in a wire format"):
        publisher.publish([message(1)])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


SILENT_AT_CONNECT: dict[str, Callable[[int], Publisher]] = {
    "nats": lambda port: NatsPublisher(f"nats://127.0.0.1:{port}", connect_timeout=1, deadline=3),
    "rabbitmq": lambda port: RabbitMqPublisher(
        f"amqp://guest:guest@127.0.0.1:{port}/%2F?stack_timeout=1&socket_timeout=1", deadline=3
    ),
    "redis": lambda port: RedisStreamPublisher(f"redis://127.0.0.1:{port}/0?socket_timeout=1"),
}


# nats-py leaves the transport of a timed-out connect to the garbage collector
# (a ResourceWarning there, not a publish outcome): collected inside its own case.
NATS_LEAK = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.mark.parametrize(
    "broker",
    [
        pytest.param(name, marks=NATS_LEAK) if name == "nats" else name
        for name in sorted(SILENT_AT_CONNECT)
    ],
)
def test_a_broker_silent_from_the_first_connect_is_a_transient_error(
    broker: str, silent_port: int
) -> None:
    """pika raised AMQPConnectorStackTimeout (no AMQPError) out of publish: the relay stopped."""
    publisher = SILENT_AT_CONNECT[broker](silent_port)
    try:
        assert publish_error(publisher).transient
    finally:
        close_publisher(publisher)
        gc.collect()


def publish_error(publisher: Publisher) -> PublishError:
    """The ``PublishError`` of one publish, its traceback (and the frames it keeps) dropped."""
    try:
        publisher.publish([message(1)])
    except PublishError as error:
        return error.with_traceback(None)
    raise AssertionError("the publish succeeded")
