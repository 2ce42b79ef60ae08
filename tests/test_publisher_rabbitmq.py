"""RabbitMqPublisher against the local RabbitMQ (127.0.0.1:5672, guest/guest).

An unreachable broker fails these tests: the queue fixture cannot connect.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest

from broker_support import (
    AMQP_PORT,
    AMQP_URL,
    AmqpBinding,
    TcpProxy,
    amqp_binding,
    batch,
    first_seen_order,
    ids,
    message,
    publish_through_a_silent_broker,
    publish_through_outage,
    unique_name,
)
from signal_mgmt.errors import ConfigError, PublishError
from signal_mgmt.outbox.cloudevents import PARTITION_KEY_HEADER, decode
from signal_mgmt.outbox.publishers.rabbitmq import RabbitMqPublisher, from_url

pytestmark = pytest.mark.brokers


@pytest.fixture
def binding() -> Iterator[AmqpBinding]:
    with amqp_binding() as created:
        yield created


@pytest.fixture
def publisher(binding: AmqpBinding) -> Iterator[RabbitMqPublisher]:
    pub = RabbitMqPublisher(AMQP_URL, exchange=binding.exchange)
    yield pub
    pub.close()


def test_publishes_persistent_confirmed_cloudevents(
    binding: AmqpBinding, publisher: RabbitMqPublisher
) -> None:
    messages = batch(20, keys=("NSE:INFY", "NSE:TCS"))
    publisher.publish(messages)
    received = binding.received()
    assert [str(r.properties.message_id) for r in received] == ids(messages)
    for record, sent in zip(received, messages, strict=True):
        assert record.routing_key == "SIGNAL_DETECTED"
        assert record.properties.delivery_mode == 2
        assert record.properties.type == "SIGNAL_DETECTED"
        assert str(record.properties.content_type).startswith("application/cloudevents+json")
        assert record.properties.headers == {PARTITION_KEY_HEADER: sent.partition_key}
        event = decode(record.body)
        assert event.id == sent.event_id
        assert event.partition_key == sent.partition_key


def test_routing_key_template(binding: AmqpBinding) -> None:
    pub = RabbitMqPublisher(
        AMQP_URL, exchange=binding.exchange, routing_key_template="{aggregate_type}.{event_type}"
    )
    try:
        pub.publish([message(1)])
    finally:
        pub.close()
    assert [r.routing_key for r in binding.received()] == ["signal.SIGNAL_DETECTED"]


def test_unroutable_message_fails_the_publish(binding: AmqpBinding) -> None:
    exchange = unique_name("sm_test_unbound")
    pub = RabbitMqPublisher(AMQP_URL, exchange=exchange)
    try:
        with pytest.raises(PublishError) as raised:
            pub.publish([message(1)])
        assert raised.value.transient
        pub.publish([])  # nothing to send is not an error
    finally:
        pub.close()
        binding.delete_exchange(exchange)


def test_outage_raises_transient_and_recovery_delivers_everything_in_order(
    binding: AmqpBinding,
) -> None:
    proxy = TcpProxy(AMQP_PORT)
    pub = RabbitMqPublisher(
        f"amqp://guest:guest@{proxy.url_host}/%2F?connection_attempts=1",
        exchange=binding.exchange,
    )
    expected = publish_through_outage(pub, proxy)
    assert first_seen_order(binding.message_ids()) == expected


def test_a_silent_broker_fails_the_publish_at_its_deadline(binding: AmqpBinding) -> None:
    proxy = TcpProxy(AMQP_PORT)
    pub = RabbitMqPublisher(
        f"amqp://guest:guest@{proxy.url_host}/%2F?connection_attempts=1",
        exchange=binding.exchange,
        deadline=1.0,
    )
    expected = publish_through_a_silent_broker(pub, proxy)
    assert first_seen_order(binding.message_ids()) == expected


def test_headers_over_the_frame_size_are_a_permanent_error(
    binding: AmqpBinding, publisher: RabbitMqPublisher
) -> None:
    """The broker closes the connection (501 FRAME_ERROR, frame_too_large): this message
    can never be sent, so it is permanent; the next event reconnects and goes through."""
    oversized = dataclasses.replace(message(1), headers={"x-big": "A" * 300_000})
    with pytest.raises(PublishError) as raised:
        publisher.publish([oversized])
    assert not raised.value.transient
    follower = message(2)
    publisher.publish([follower])
    assert [str(r.properties.message_id) for r in binding.received()] == [str(follower.event_id)]


def test_a_closed_publisher_reconnects(binding: AmqpBinding, publisher: RabbitMqPublisher) -> None:
    publisher.publish([message(1, salt=binding.queue)])
    publisher.close()
    publisher.close()
    publisher.publish([message(2, salt=binding.queue)])
    assert len(binding.received()) == 2


def test_default_exchange_routes_by_queue_name(binding: AmqpBinding) -> None:
    pub = RabbitMqPublisher(AMQP_URL, exchange="", routing_key_template=binding.queue)
    try:
        pub.publish([message(1)])
    finally:
        pub.close()
    assert len(binding.received()) == 1


def test_from_url_reads_options_and_passes_pika_options_through() -> None:
    pub = from_url(
        "amqp://guest:guest@127.0.0.1:5672/%2F?exchange=orders&routing_key=tms.{event_type}"
        "&mandatory=false&declare_exchange=no&source=tms&heartbeat=30"
    )
    assert pub.exchange == "orders"
    assert pub.routing_key_template == "tms.{event_type}"
    assert not pub.mandatory
    assert not pub.declare_exchange
    assert pub.parameters.heartbeat == 30  # the URL's, over our default
    assert pub.parameters.blocked_connection_timeout == 30.0
    assert (pub.parameters.socket_timeout, pub.parameters.stack_timeout) == (5.0, 5.0)
    assert pub.deadline == 10.0
    assert from_url("amqp://guest:guest@127.0.0.1:5672/%2F?deadline=2.5").deadline == 2.5
    assert from_url("amqp://guest:guest@127.0.0.1:5672/%2F").parameters.heartbeat == 10
    assert json.loads(pub.wire_format.encode(message(1)))["source"] == "tms"


@pytest.mark.parametrize(
    "url",
    [
        "amqp://guest:guest@127.0.0.1:5672/%2F?routing_key={symbol}",
        "amqp://guest:guest@127.0.0.1:5672/%2F?mandatory=maybe",
        "amqp://guest:guest@127.0.0.1:5672/%2F?colour=blue",
    ],
)
def test_bad_url_options_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        from_url(url)
