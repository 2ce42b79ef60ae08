"""How the broker publishers classify what goes wrong with one message (real brokers).

A message that cannot be serialized is a permanent error (the event goes DEAD, no retry
changes it); any other exception from inside a publisher is a bug and reaches the relay
as it is (it stops the relay), never a silent success.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

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


def test_a_bug_inside_a_publisher_is_raised_as_it_is(
    build: Callable[[WireFormat], Publisher],
) -> None:
    publisher = build(FailingFormat(RuntimeError("bug in a wire format")))
    with pytest.raises(RuntimeError, match="bug in a wire format"):
        publisher.publish([message(1)])
