"""RabbitMQ publisher (extra ``rabbitmq``), with pika's BlockingConnection.

Publisher confirms are on: ``publish`` returns only after the broker has
acknowledged every message, so the relay never marks an unconfirmed event
published. Messages are persistent (delivery mode 2), ``message_id`` is the
event_id (consumers drop re-deliveries with it; RabbitMQ itself does not
de-duplicate), and they are ``mandatory``: a message no queue would receive is
returned and the publish fails instead of the event vanishing.

Messages go one at a time, each after the previous one's confirm, so a failure
never lets a later event of a key overtake an earlier one. A publish call has a
deadline (``deadline``, default 10 s): pika itself would wait forever for the
confirm of a broker that went silent.

Transient or permanent: only a message the broker refuses for its size (body
or headers) is permanent (DEAD); a lost connection, refused credentials, a missing exchange,
an unroutable message or a nack are transient: retried until fixed.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from pika.adapters.utils.connection_workflow import AMQPConnectorException
from pika.connection import Parameters

from signal_mgmt.errors import ConfigError, PublishError
from signal_mgmt.outbox.cloudevents import DEFAULT_SOURCE, CloudEventFormat, WireFormat
from signal_mgmt.outbox.events import OutboxMessage
from signal_mgmt.outbox.publishers.broker_url import (
    check_template,
    encode_or_refuse,
    headers_or_refuse,
    positive_float,
    render,
    split_options,
)

log = logging.getLogger(__name__)

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
DEFAULT_EXCHANGE = "signal_mgmt"
DEFAULT_ROUTING_KEY = "{event_type}"
DEFAULT_DEADLINE = 10.0
"""Seconds one publish call may take, connecting and every confirm included."""
BLOCKED_TIMEOUT = 30.0
"""Seconds a publish may wait while the broker blocks publishers (memory or disk alarm)."""
HEARTBEAT = 10
"""Seconds of the AMQP heartbeat (unless the URL sets one): a connection abandoned after a
deadline is closed by pika within about twice that."""
CONNECT_TIMEOUT = 5.0
_URL_DEFAULTS = {
    "heartbeat": HEARTBEAT,
    "socket_timeout": CONNECT_TIMEOUT,
    "stack_timeout": CONNECT_TIMEOUT,
}

_OPTIONS = {
    "exchange",
    "exchange_type",
    "declare_exchange",
    "routing_key",
    "mandatory",
    "source",
    "deadline",
}
# AMQPConnectorException: what BlockingConnection raises while connecting (a broker
# that accepts TCP but never answers: AMQPConnectorStackTimeout); not an AMQPError.
_FAILURES = (pika.exceptions.AMQPError, AMQPConnectorException, OSError)
_MESSAGE_TOO_LARGE = 406  # PRECONDITION_FAILED, "message size ... larger than max size"
_FRAME_ERROR = 501  # the connection closed: "{frame_too_large,...}" (headers over frame_max)


def _is_transient(error: BaseException) -> bool:
    """Only a message the broker refuses for its size is permanent (a body over
    max_message_size, or headers that do not fit in one frame); a connection,
    credentials, a missing exchange or a nack may all be fixed while we retry."""
    if isinstance(error, pika.exceptions.ChannelClosedByBroker):
        return not (error.reply_code == _MESSAGE_TOO_LARGE and "size" in error.reply_text)
    if isinstance(error, pika.exceptions.ConnectionClosedByBroker):
        return not (error.reply_code == _FRAME_ERROR and "frame_too_large" in error.reply_text)
    return True


class RabbitMqPublisher:
    """Publishes to an exchange; construct directly or with :func:`from_url`.

    ``declare_exchange`` declares ``exchange`` (durable, ``exchange_type``) on
    connect; an exchange of another type is then a connection-time error.
    ``exchange=""`` is RabbitMQ's default exchange (routing key = queue name).
    ``deadline`` bounds one ``publish`` call, connecting included (see ``_Worker``).
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
        deadline: float = DEFAULT_DEADLINE,
    ) -> None:
        self.parameters = _parameters(parameters)
        self.exchange = exchange
        self.exchange_type = exchange_type
        self.declare_exchange = declare_exchange and exchange != ""
        self.routing_key_template = check_template(routing_key_template, "routing key")
        self.mandatory = mandatory
        self.wire_format = wire_format or CloudEventFormat()
        self.deadline = deadline
        self._lock = threading.Lock()
        self._worker: _Worker | None = None

    def publish(self, messages: Sequence[OutboxMessage]) -> None:
        if not messages:
            return
        with self._lock:
            if self._worker is None:
                self._worker = _Worker(self)
            attempt = _Attempt(list(messages))
            self._worker.run(attempt)
            if not attempt.done.wait(self.deadline):
                # pika has no timeout on a silent connection: give up on it. The
                # worker stops before its next message and closes the connection
                # once pika returns (heartbeat, TCP); at most the message it was
                # sending arrives late, before the relay's retry re-sends it.
                attempt.cancelled.set()
                self._worker.retire()
                self._worker = None
                raise PublishError(
                    f"RabbitMQ publish timed out: no confirm within {self.deadline}s",
                    transient=True,
                )
            if attempt.error is not None:
                raise attempt.error

    def close(self) -> None:
        with self._lock:
            if self._worker is not None:
                self._worker.retire()
                self._worker = None

    def _send(self, channel: BlockingChannel, attempt: _Attempt) -> None:
        try:
            for message in attempt.messages:
                if attempt.cancelled.is_set():
                    return
                body = encode_or_refuse(self.wire_format, message)
                channel.basic_publish(
                    self.exchange,
                    render(self.routing_key_template, message),
                    body,
                    properties=self._properties(message),
                    mandatory=self.mandatory,
                )
        except pika.exceptions.UnroutableError as error:
            # The connection is fine: no queue is bound for this routing key (yet).
            raise PublishError(
                f"RabbitMQ returned an unroutable message (exchange {self.exchange!r}): {error!r}",
                transient=True,
            ) from error

    def _properties(self, message: OutboxMessage) -> pika.BasicProperties:
        return pika.BasicProperties(
            content_type=self.wire_format.content_type,
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=str(message.event_id),
            type=message.event_type,
            timestamp=int(message.created_at.timestamp()),
            headers=dict(headers_or_refuse(self.wire_format, message)),
        )

    def _connect(self) -> tuple[pika.BlockingConnection, BlockingChannel]:
        connection = pika.BlockingConnection(self.parameters)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            if self.declare_exchange:
                channel.exchange_declare(self.exchange, self.exchange_type, durable=True)
        except BaseException:
            _close_quietly(connection)
            raise
        return connection, channel


@dataclass
class _Attempt:
    messages: list[OutboxMessage]
    done: threading.Event = field(default_factory=threading.Event)
    cancelled: threading.Event = field(default_factory=threading.Event)
    error: Exception | None = None


class _Worker:
    """A daemon thread that owns one pika connection and runs publishes on it.

    pika's BlockingConnection must stay on one thread, and nothing in it bounds
    the wait for a confirm from a broker that went silent; running it here lets
    the caller wait with a deadline. A retired worker closes its connection and
    ends after the call in hand (a daemon: a stuck one never holds the process).
    """

    def __init__(self, publisher: RabbitMqPublisher) -> None:
        self._publisher = publisher
        self._inbox: queue.SimpleQueue[_Attempt | None] = queue.SimpleQueue()
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        threading.Thread(target=self._main, name="rabbitmq-publisher", daemon=True).start()

    def run(self, attempt: _Attempt) -> None:
        self._inbox.put(attempt)

    def retire(self) -> None:
        self._inbox.put(None)

    def _main(self) -> None:
        try:
            while (attempt := self._inbox.get()) is not None:
                try:
                    self._publisher._send(self._open_channel(), attempt)
                except PublishError as error:
                    attempt.error = error
                except _FAILURES as error:
                    self._disconnect()  # the next publish reconnects from scratch
                    attempt.error = PublishError(
                        f"RabbitMQ publish failed: {error!r}", transient=_is_transient(error)
                    )
                    attempt.error.__cause__ = error
                except Exception as error:  # a bug: the caller re-raises it, the relay stops
                    self._disconnect()
                    attempt.error = error
                finally:
                    attempt.done.set()
        finally:
            self._disconnect()

    def _open_channel(self) -> BlockingChannel:
        if self._channel is not None and self._channel.is_open and self._is_alive():
            return self._channel
        self._disconnect()
        self._connection, self._channel = self._publisher._connect()
        return self._channel

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
        deadline=positive_float(options, "deadline", DEFAULT_DEADLINE),
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
    if isinstance(given, str):  # our defaults, unless the URL chose its own
        chosen = {name for name, _ in parse_qsl(urlsplit(given).query)}
        for name, value in _URL_DEFAULTS.items():
            if name not in chosen:
                setattr(parameters, name, value)
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
