"""RabbitMQ publisher (extra ``rabbitmq``), with pika's BlockingConnection.

Publisher confirms are on: ``publish`` returns only after the broker has
acknowledged every message, so the relay never marks an unconfirmed event
published. Messages are persistent (delivery mode 2), ``message_id`` is the
event_id (consumers drop re-deliveries with it; RabbitMQ itself does not
de-duplicate), and they are ``mandatory``: a message no queue would receive is
returned and the publish fails instead of the event vanishing.

Messages go one at a time, each after the previous one's confirm, so a failure
never lets a later event of a key overtake an earlier one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from pika.connection import Parameters

from signal_mgmt.errors import ConfigError, PublishError
from signal_mgmt.outbox.cloudevents import DEFAULT_SOURCE, CloudEventFormat, WireFormat
from signal_mgmt.outbox.events import OutboxMessage
from signal_mgmt.outbox.publishers.broker_url import check_template, render, split_options

log = logging.getLogger(__name__)

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
DEFAULT_EXCHANGE = "signal_mgmt"
DEFAULT_ROUTING_KEY = "{event_type}"
BLOCKED_TIMEOUT = 30.0
"""Seconds a publish may wait while the broker blocks publishers (memory or disk alarm)."""

_OPTIONS = {"exchange", "exchange_type", "declare_exchange", "routing_key", "mandatory", "source"}
_FAILURES = (pika.exceptions.AMQPError, OSError)


class RabbitMqPublisher:
    """Publishes to an exchange; construct directly or with :func:`from_url`.

    ``declare_exchange`` declares ``exchange`` (durable, ``exchange_type``) on
    connect; an exchange of another type is then a connection-time error.
    ``exchange=""`` is RabbitMQ's default exchange (routing key = queue name).
    """

    def __init__(
        self,
        parameters: Parameters | str = DEFAULT_URL,
        *,
        exchange: str = DEFAULT_EXCHANGE,
        exchange_type: str = "topic",
        declare_exchange: bool = True,
        routing_key_template: str = DEFAULT_ROUTING_KEY,
        mandatory: bool = True,
        wire_format: WireFormat | None = None,
    ) -> None:
        self.parameters = _parameters(parameters)
        self.exchange = exchange
        self.exchange_type = exchange_type
        self.declare_exchange = declare_exchange and exchange != ""
        self.routing_key_template = check_template(routing_key_template, "routing key")
        self.mandatory = mandatory
        self.wire_format = wire_format or CloudEventFormat()
        self._lock = threading.Lock()
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None

    def publish(self, messages: Sequence[OutboxMessage]) -> None:
        if not messages:
            return
        with self._lock:
            try:
                channel = self._open_channel()
                for message in messages:
                    channel.basic_publish(
                        self.exchange,
                        render(self.routing_key_template, message),
                        self.wire_format.encode(message),
                        properties=self._properties(message),
                        mandatory=self.mandatory,
                    )
            except pika.exceptions.UnroutableError as error:
                # The connection is fine: no queue is bound for this routing key (yet).
                raise PublishError(
                    f"RabbitMQ returned an unroutable message (exchange {self.exchange!r}): "
                    f"{error!r}",
                    transient=True,
                ) from error
            except _FAILURES as error:
                self._disconnect()  # the next publish reconnects from scratch
                raise PublishError(f"RabbitMQ publish failed: {error!r}", transient=True) from error

    def close(self) -> None:
        with self._lock:
            self._disconnect()

    def _properties(self, message: OutboxMessage) -> pika.BasicProperties:
        return pika.BasicProperties(
            content_type=self.wire_format.content_type,
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=str(message.event_id),
            type=message.event_type,
            timestamp=int(message.created_at.timestamp()),
            headers=dict(self.wire_format.headers(message)),
        )

    def _open_channel(self) -> BlockingChannel:
        if self._channel is not None and self._channel.is_open and self._is_alive():
            return self._channel
        self._disconnect()
        connection = pika.BlockingConnection(self.parameters)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            if self.declare_exchange:
                channel.exchange_declare(self.exchange, self.exchange_type, durable=True)
        except BaseException:
            _close_quietly(connection)
            raise
        self._connection, self._channel = connection, channel
        return channel

    def _is_alive(self) -> bool:
        """Notice a connection the broker closed while we were idle, before sending anything."""
        connection = self._connection
        if connection is None or not connection.is_open:
            return False
        try:
            connection.process_data_events(time_limit=0)
        except _FAILURES as error:
            log.debug("RabbitMQ connection went stale: %r", error)
            return False
        return connection.is_open

    def _disconnect(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            _close_quietly(connection)


def from_url(url: str) -> RabbitMqPublisher:
    """``amqp://USER:PASS@HOST:5672/VHOST?exchange=E&routing_key=T&source=SRC``.

    Also ``exchange_type`` (default topic), ``declare_exchange`` and
    ``mandatory`` (true/false); pika's own URL options (``heartbeat``, ...)
    pass through.
    """
    broker_url, options = split_options(url, _OPTIONS)
    return RabbitMqPublisher(
        broker_url,
        exchange=options.get("exchange", DEFAULT_EXCHANGE),
        exchange_type=options.get("exchange_type", "topic"),
        declare_exchange=_flag(options, "declare_exchange", default=True),
        routing_key_template=options.get("routing_key", DEFAULT_ROUTING_KEY),
        mandatory=_flag(options, "mandatory", default=True),
        wire_format=CloudEventFormat(source=options.get("source") or DEFAULT_SOURCE),
    )


def _parameters(given: Parameters | str) -> Parameters:
    parameters: Parameters
    if isinstance(given, str):
        try:
            parameters = pika.URLParameters(given)
        except (ValueError, TypeError) as error:
            raise ConfigError(f"bad AMQP URL: {error}") from None
    else:
        parameters = given
    if parameters.blocked_connection_timeout is None:
        # Without it a broker alarm would hang the relay inside publish forever.
        parameters.blocked_connection_timeout = BLOCKED_TIMEOUT
    return parameters


def _flag(options: dict[str, str], name: str, *, default: bool) -> bool:
    raw = options.get(name)
    if raw is None:
        return default
    if raw.lower() in {"true", "1", "yes"}:
        return True
    if raw.lower() in {"false", "0", "no"}:
        return False
    raise ConfigError(f"option {name} must be true or false, got {raw!r}")


def _close_quietly(connection: pika.BlockingConnection) -> None:
    if connection.is_open:
        try:
            connection.close()
        except _FAILURES as error:  # already broken: nothing left to close
            log.debug("closing a broken RabbitMQ connection: %r", error)
