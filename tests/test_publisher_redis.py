"""RedisStreamPublisher against the local Redis (127.0.0.1:6379).

An unreachable server fails these tests: the fixture's PING raises.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from broker_support import (
    REDIS_PORT,
    REDIS_URL,
    RedisKeys,
    TcpProxy,
    batch,
    first_seen_order,
    ids,
    message,
    publish_through_a_silent_broker,
    publish_through_outage,
    redis_keys,
)
from signal_mgmt.errors import ConfigError, PublishError
from signal_mgmt.outbox.cloudevents import PARTITION_KEY_HEADER, decode
from signal_mgmt.outbox.publishers.redis import RedisStreamPublisher, from_url

pytestmark = pytest.mark.brokers


@pytest.fixture
def keys() -> Iterator[RedisKeys]:
    with redis_keys() as created:
        yield created


def test_xadds_cloudevents_with_event_id_in_order(keys: RedisKeys) -> None:
    stream = f"{keys.prefix}.events"
    pub = RedisStreamPublisher(REDIS_URL, stream_template=stream)
    try:
        messages = batch(25, keys=("NSE:INFY", "NSE:TCS", "NSE:SBIN"))
        pub.publish(messages)
    finally:
        pub.close()
    stored = keys.entries(stream)
    assert keys.event_ids(stream) == ids(messages)
    for fields, sent in zip(stored, messages, strict=True):
        assert fields[PARTITION_KEY_HEADER.encode()] == sent.partition_key.encode()
        assert fields[b"content-type"].startswith(b"application/cloudevents+json")
        event = decode(fields[b"body"])
        assert event.id == sent.event_id
        assert event.data == sent.payload


def test_stream_per_aggregate_type(keys: RedisKeys) -> None:
    pub = RedisStreamPublisher(REDIS_URL, stream_template=f"{keys.prefix}.{{aggregate_type}}")
    try:
        pub.publish([message(1)])
    finally:
        pub.close()
    assert len(keys.entries(f"{keys.prefix}.signal")) == 1


def test_maxlen_trims_the_stream(keys: RedisKeys) -> None:
    pub = from_url(f"{REDIS_URL}?stream={keys.prefix}.s&maxlen=10")
    try:
        for _ in range(30):
            pub.publish(batch(10))
    finally:
        pub.close()
    # MAXLEN ~ trims whole macro-nodes: never below 10, far below the 300 written
    assert 10 <= keys.admin.xlen(f"{keys.prefix}.s") < 300


def test_xadd_to_a_key_of_another_type_is_a_publish_error(keys: RedisKeys) -> None:
    keys.admin.set(f"{keys.prefix}.taken", "not a stream")
    pub = RedisStreamPublisher(REDIS_URL, stream_template=f"{keys.prefix}.{{event_type}}")
    try:
        with pytest.raises(PublishError) as raised:
            pub.publish([message(1, event_type="taken")])
        assert raised.value.transient
    finally:
        pub.close()


def test_outage_raises_transient_and_recovery_delivers_everything_in_order(keys: RedisKeys) -> None:
    stream = f"{keys.prefix}.events"
    proxy = TcpProxy(REDIS_PORT)
    pub = from_url(f"redis://{proxy.url_host}/0?stream={stream}")
    expected = publish_through_outage(pub, proxy)
    assert first_seen_order(keys.event_ids(stream)) == expected


def test_a_silent_server_fails_the_publish_at_its_socket_timeout(keys: RedisKeys) -> None:
    stream = f"{keys.prefix}.events"
    proxy = TcpProxy(REDIS_PORT)
    pub = from_url(f"redis://{proxy.url_host}/0?stream={stream}&socket_timeout=1")
    expected = publish_through_a_silent_broker(pub, proxy)
    assert first_seen_order(keys.event_ids(stream)) == expected


def test_from_url_reads_options_and_passes_redis_options_through() -> None:
    pub = from_url("redis://127.0.0.1:6379/2?stream=a.{aggregate_type}&source=tms&socket_timeout=3")
    try:
        assert pub.stream_template == "a.{aggregate_type}"
        kwargs = pub.client.connection_pool.connection_kwargs
        assert kwargs["db"] == 2
        assert kwargs["socket_timeout"] == 3  # the URL's, over our default
        assert kwargs["socket_connect_timeout"] == 2.0  # ours: a silent server never hangs
        assert json.loads(pub.wire_format.encode(message(1)))["source"] == "tms"
    finally:
        pub.close()


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0?stream={symbol}",
        "redis://127.0.0.1:6379/0?maxlen=0",
        "redis://127.0.0.1:6379/0?maxlen=lots",
        "redis://127.0.0.1:6379/0?socket_timeout=soon",
    ],
)
def test_bad_url_options_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        from_url(url)
