"""Redis Streams publisher (extra ``redis``).

One XADD per event, all of a call in one MULTI/EXEC transaction: Redis applies
the batch at once or, if the connection fails first, not at all. Each entry
carries ``event_id`` (consumers drop re-deliveries with it: Redis does not
de-duplicate), the transport headers (``partitionkey`` among them),
``content-type`` and ``body``, the CloudEvents envelope.

The stream name is a template: one stream for everything (the default,
``signal_mgmt.events``) or one per aggregate type (``signal_mgmt.{aggregate_type}``).
An entry's stream id is assigned by Redis in arrival order, so the order of the
batch is the order in each stream.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.typing import EncodableT, FieldT

from signal_mgmt.errors import ConfigError, PublishError
from signal_mgmt.outbox.cloudevents import DEFAULT_SOURCE, CloudEventFormat, WireFormat
from signal_mgmt.outbox.events import OutboxMessage
from signal_mgmt.outbox.publishers.broker_url import (
    check_template,
    encode_or_refuse,
    headers_or_refuse,
    positive_int,
    render,
    split_options,
)

log = logging.getLogger(__name__)

DEFAULT_STREAM = "signal_mgmt.events"
SOCKET_TIMEOUT = 5.0
"""Seconds a reply may take; with the one retry, a publish fails within about twice that."""
CONNECT_TIMEOUT = 2.0
_OPTIONS = {"stream", "maxlen", "source"}


class RedisStreamPublisher:
    """XADDs to Redis streams; construct directly or with :func:`from_url`.

    ``maxlen`` trims each stream to about that many entries (``MAXLEN ~``);
    left out, streams grow until the host trims them.
    """

    def __init__(
        self,
        client: redis.Redis | str = "redis://127.0.0.1:6379/0",
        *,
        stream_template: str = DEFAULT_STREAM,
        maxlen: int | None = None,
        wire_format: WireFormat | None = None,
    ) -> None:
        self.client = _client(client)
        self.stream_template = check_template(stream_template, "stream")
        self.maxlen = maxlen
        self.wire_format = wire_format or CloudEventFormat()
        self._lock = threading.Lock()

    def publish(self, messages: Sequence[OutboxMessage]) -> None:
        if not messages:
            return
        with self._lock:
            pipeline = self.client.pipeline(transaction=True)
            for message in messages:
                headers = headers_or_refuse(self.wire_format, message)
                fields: dict[FieldT, EncodableT] = {name: headers[name] for name in headers}
                fields["event_id"] = str(message.event_id)
                fields["content-type"] = self.wire_format.content_type
                fields["body"] = encode_or_refuse(self.wire_format, message)
                pipeline.xadd(render(self.stream_template, message), fields, maxlen=self.maxlen)
            try:
                pipeline.execute()
            except redis.exceptions.DataError as error:  # a value redis-py cannot encode
                raise PublishError(
                    f"Redis refused a message: {error!r}", transient=False
                ) from error
            except redis.exceptions.RedisError as error:
                # Connection errors and timeouts, and refusals an operator can fix
                # (OOM under maxmemory, a key of another type): retried until fixed.
                raise PublishError(f"Redis XADD failed: {error!r}", transient=True) from error
            finally:
                pipeline.reset()

    def close(self) -> None:
        with self._lock:
            self.client.close()


def from_url(url: str) -> RedisStreamPublisher:
    """``redis://HOST:6379/DB?stream=T&maxlen=N&source=SRC``.

    ``stream`` is a template over ``{event_type}`` and ``{aggregate_type}``;
    redis-py's own URL options (``socket_timeout``, ...) pass through.
    """
    redis_url, options = split_options(url, _OPTIONS)
    return RedisStreamPublisher(
        redis_url,
        stream_template=options.get("stream", DEFAULT_STREAM),
        maxlen=positive_int(options, "maxlen"),
        wire_format=CloudEventFormat(source=options.get("source") or DEFAULT_SOURCE),
    )


def _client(client: redis.Redis | str) -> redis.Redis:
    if not isinstance(client, str):
        return client
    try:
        # One immediate retry replaces a pooled connection the server dropped
        # while idle; longer waits belong to the relay's backoff, not here. The
        # timeouts are every publish's deadline (a silent server fails the call):
        # options in the URL take precedence.
        return redis.Redis.from_url(
            client,
            retry=Retry(NoBackoff(), 1),
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=CONNECT_TIMEOUT,
        )
    except ValueError as error:
        raise ConfigError(f"bad Redis URL: {error}") from None
