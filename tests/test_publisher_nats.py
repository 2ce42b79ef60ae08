"""NatsPublisher against the local NATS JetStream server (127.0.0.1:4222).

An unreachable server fails these tests: the stream fixture cannot be created.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest

from broker_support import (
    NATS_PORT,
    NATS_URL,
    NatsStream,
    TcpProxy,
    batch,
    first_seen_order,
    ids,
    message,
    nats_stream,
    publish_through_a_silent_broker,
    publish_through_outage,
    unique_name,
)
from signal_mgmt.errors import ConfigError, PublishError
from signal_mgmt.outbox.cloudevents import PARTITION_KEY_HEADER, decode
from signal_mgmt.outbox.events import OutboxMessage
from signal_mgmt.outbox.publishers.nats import NatsPublisher, from_url

pytestmark = pytest.mark.brokers


@pytest.fixture
def stream() -> Iterator[NatsStream]:
    with nats_stream() as created:
        yield created


@pytest.fixture
def publisher(stream: NatsStream) -> Iterator[NatsPublisher]:
    pub = NatsPublisher(NATS_URL, subject_template=stream.subject_template(), stream=stream.name)
    yield pub
    pub.close()


def per_key(messages: list[OutboxMessage], event_ids: list[str]) -> dict[str, list[str]]:
    key_of = {str(m.event_id): m.partition_key for m in messages}
    grouped: dict[str, list[str]] = {}
    for event_id in event_ids:
        grouped.setdefault(key_of[event_id], []).append(event_id)
    return grouped


def test_publishes_cloudevents_with_msg_id_and_partition_key(
    stream: NatsStream, publisher: NatsPublisher
) -> None:
    messages = batch(30, keys=("NSE:INFY", "NSE:TCS", "NSE:SBIN"))
    publisher.publish(messages)
    stored = stream.stored()
    assert len(stored) == 30
    for record in stored:
        event = decode(record.body)
        assert record.headers["Nats-Msg-Id"] == str(event.id)
        assert record.headers[PARTITION_KEY_HEADER] == event.partition_key
        assert record.headers["Content-Type"].startswith("application/cloudevents+json")
        assert record.subject == f"{stream.prefix}.SIGNAL_DETECTED"
    assert per_key(messages, stream.event_ids()) == per_key(messages, ids(messages))


def test_redelivery_of_the_same_event_id_is_dropped_by_jetstream(
    stream: NatsStream, publisher: NatsPublisher
) -> None:
    first = batch(10)
    publisher.publish(first)
    publisher.publish(first[3:] + batch(5))  # a relay retry overlapping new events
    publisher.publish(first)
    stored = stream.event_ids()
    assert len(stored) == 15
    assert len(set(stored)) == 15
    assert stored[:10] == ids(first)


def test_subject_template_uses_aggregate_type(stream: NatsStream) -> None:
    pub = NatsPublisher(NATS_URL, subject_template=f"{stream.prefix}.{{aggregate_type}}.events")
    try:
        pub.publish([message(1)])
    finally:
        pub.close()
    assert [r.subject for r in stream.stored()] == [f"{stream.prefix}.signal.events"]


def test_outage_raises_transient_and_recovery_delivers_everything_in_order(
    stream: NatsStream,
) -> None:
    proxy = TcpProxy(NATS_PORT)
    pub = NatsPublisher(
        f"nats://{proxy.url_host}", subject_template=stream.subject_template(), stream=stream.name
    )
    expected = publish_through_outage(pub, proxy, size=6)
    assert first_seen_order(stream.event_ids()) == expected


def test_a_silent_server_fails_the_publish_at_its_deadline(stream: NatsStream) -> None:
    proxy = TcpProxy(NATS_PORT)
    pub = NatsPublisher(
        f"nats://{proxy.url_host}",
        subject_template=stream.subject_template(),
        stream=stream.name,
        deadline=1.0,
    )
    expected = publish_through_a_silent_broker(pub, proxy)
    assert first_seen_order(stream.event_ids()) == expected


def test_a_closed_publisher_reconnects_on_the_next_publish(
    stream: NatsStream, publisher: NatsPublisher
) -> None:
    publisher.publish([message(1, salt=stream.name)])
    publisher.close()
    publisher.close()  # idempotent
    publisher.publish([message(2, salt=stream.name)])
    assert len(stream.stored()) == 2


def test_subject_without_a_stream_is_a_transient_error() -> None:
    pub = NatsPublisher(NATS_URL, subject_template=f"{unique_name('nostream')}.{{event_type}}")
    try:
        with pytest.raises(PublishError) as raised:
            pub.publish([message(1)])
        assert raised.value.transient
    finally:
        pub.close()


def test_oversized_message_is_a_permanent_error(
    stream: NatsStream, publisher: NatsPublisher
) -> None:
    oversized = dataclasses.replace(message(1), payload={"blob": "x" * (2 * 1024 * 1024)})
    with pytest.raises(PublishError) as raised:
        publisher.publish([oversized])
    assert not raised.value.transient
    assert stream.stored() == []


def test_a_header_over_the_servers_limit_is_a_permanent_error(
    stream: NatsStream, publisher: NatsPublisher
) -> None:
    """JetStream's 10097 (header size exceeds maximum) was transient: the batch retried forever."""
    oversized = dataclasses.replace(message(1), headers={"x-big": "A" * 70_000})
    with pytest.raises(PublishError) as raised:
        publisher.publish([oversized])
    assert not raised.value.transient
    publisher.publish([message(2)])  # the connection is still good for the next event
    assert len(stream.stored()) == 1


def test_from_url_reads_options() -> None:
    pub = from_url(
        "nats://127.0.0.1:4222,127.0.0.1:4223?subject=a.{event_type}&stream=S&source=tms"
        "&timeout=2.5&deadline=7"
    )
    assert pub.servers == ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]
    assert pub.subject_template == "a.{event_type}"
    assert pub.stream == "S"
    assert pub.timeout == 2.5
    assert pub.deadline == 7.0
    assert json.loads(pub.wire_format.encode(message(1)))["source"] == "tms"


@pytest.mark.parametrize(
    "url",
    [
        "nats://127.0.0.1:4222?subject=a.{symbol}",
        "nats://127.0.0.1:4222?subject=a.{",
        "nats://127.0.0.1:4222?subject=",
        "nats://127.0.0.1:4222?timeout=-1",
        "nats://127.0.0.1:4222?timeout=soon",
        "nats://127.0.0.1:4222?colour=blue",
        "nats://?stream=S",
    ],
)
def test_bad_url_options_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        from_url(url)
