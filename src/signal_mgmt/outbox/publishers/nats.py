"""NATS JetStream publisher (extra ``nats``).

Every message is a JetStream publish with ``Nats-Msg-Id`` = event_id, so the
stream's duplicate window drops a re-delivery of an event the relay published
but could not mark. Each call waits for every acknowledgement: the relay marks
nothing published that JetStream has not stored.

nats-py is asyncio; the relay is a thread. The publisher owns a private event
loop on a daemon thread and hands it coroutines, so a host's own loop (if any)
is never touched.

Order: the events of one partition key are published one after the other, each
after the previous one's ack; different keys go in parallel. A failure stops
only its key's chain, and the relay's retry of the whole batch re-sends the
stored ones (dropped as duplicates) before the rest, so a key is never reordered.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Sequence

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import Header

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
from signal_mgmt.redaction import redact_url

log = logging.getLogger(__name__)

DEFAULT_SUBJECT = "signal_mgmt.{event_type}"
_OPTIONS = {"subject", "stream", "source", "timeout", "connect_timeout", "deadline"}
DEFAULT_DEADLINE = 10.0
"""Seconds one publish call may take, connecting and every acknowledgement included."""
# Retrying cannot make these succeed: the message itself is refused (too large, a
# subject or header the server rejects). Anything else (connection, no stream for
# the subject, a stream mismatch, JetStream unavailable) may be fixed meanwhile.
_PERMANENT = (nats.errors.MaxPayloadError, nats.errors.BadSubjectError, nats.errors.BadHeaderError)
# JetStream refuses the message itself: 10054 message size exceeds maximum allowed,
# 10097 header size exceeds maximum allowed (64k).
_REFUSED_MESSAGE = {10054, 10097}
_TRANSIENT = (OSError, asyncio.TimeoutError, nats.errors.Error)
_CLOSE_TIMEOUT = 2.0


class NatsPublisher:
    """Publishes to JetStream; construct directly or with :func:`from_url`.

    ``stream``, when given, is sent as the expected stream, so a subject that
    maps to another stream is refused instead of silently landing there.
    """

    def __init__(
        self,
        servers: str | Sequence[str] = "nats://127.0.0.1:4222",
        *,
        subject_template: str = DEFAULT_SUBJECT,
        stream: str | None = None,
        wire_format: WireFormat | None = None,
        timeout: float = 5.0,
        connect_timeout: float = 2.0,
        deadline: float = DEFAULT_DEADLINE,
    ) -> None:
        self.servers = [servers] if isinstance(servers, str) else list(servers)
        self.subject_template = check_template(subject_template, "subject")
        self.stream = stream
        self.wire_format = wire_format or CloudEventFormat()
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.deadline = deadline
        self._lock = threading.Lock()  # one publish or close at a time
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Client | None = None

    def publish(self, messages: Sequence[OutboxMessage]) -> None:
        if not messages:
            return
        with self._lock:
            loop = self._running_loop()
            outcome = asyncio.run_coroutine_threadsafe(self._publish(list(messages)), loop)
            try:  # _publish keeps its own deadline; this only guards a wedged loop
                outcome.result(self.deadline + 2 * _CLOSE_TIMEOUT)
            except concurrent.futures.TimeoutError:
                outcome.cancel()
                raise PublishError(
                    f"NATS publish timed out after {self.deadline}s", transient=True
                ) from None

    def close(self) -> None:
        """Close the connection and stop the private loop; a later publish starts anew."""
        with self._lock:
            if self._loop is None or self._thread is None:
                return
            asyncio.run_coroutine_threadsafe(self._disconnect(), self._loop).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop = self._thread = None

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=_run_loop, args=(loop,), name="nats-publisher", daemon=True
            )
            self._thread.start()
            self._loop = loop
        return self._loop

    async def _publish(self, messages: list[OutboxMessage]) -> None:
        try:
            await asyncio.wait_for(self._publish_chains(messages), self.deadline)
        except _PERMANENT as error:
            raise PublishError(f"NATS refused a message: {error!r}", transient=False) from error
        except nats.js.errors.APIError as error:
            transient = error.err_code not in _REFUSED_MESSAGE
            raise PublishError(f"JetStream refused: {error!r}", transient=transient) from error
        except _TRANSIENT as error:
            await self._disconnect()  # the next publish reconnects from scratch
            raise PublishError(f"NATS publish failed: {error!r}", transient=True) from error

    async def _publish_chains(self, messages: list[OutboxMessage]) -> None:
        jetstream = await self._jetstream()
        chains: dict[str, list[OutboxMessage]] = {}
        for message in messages:
            chains.setdefault(message.partition_key, []).append(message)
        outcomes = await asyncio.gather(
            *(self._publish_chain(jetstream, chain) for chain in chains.values()),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _publish_chain(self, jetstream: JetStreamContext, chain: list[OutboxMessage]) -> None:
        for message in chain:
            headers = headers_or_refuse(self.wire_format, message)
            headers["Content-Type"] = self.wire_format.content_type
            headers[Header.MSG_ID] = str(message.event_id)
            await jetstream.publish(
                render(self.subject_template, message),
                encode_or_refuse(self.wire_format, message),
                timeout=self.timeout,
                stream=self.stream,
                headers=headers,
            )

    async def _jetstream(self) -> JetStreamContext:
        client = self._client
        if client is None or not client.is_connected:
            await self._disconnect()
            # nats-py's own reconnect would buffer publishes while the server is
            # away; we want a prompt error instead and let the relay back off.
            client = await nats.connect(
                servers=self.servers,
                allow_reconnect=False,
                # Bounds the first connect to two quick tries per server; nats-py's
                # defaults would keep trying for minutes inside one publish.
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                connect_timeout=max(1, round(self.connect_timeout)),
                error_cb=_log_error,
                name="signal-mgmt-relay",
            )
            self._client = client
        return client.jetstream(timeout=self.timeout)

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None and not client.is_closed:
            try:
                await asyncio.wait_for(client.close(), _CLOSE_TIMEOUT)
            except _TRANSIENT as error:  # already broken: nothing left to flush
                log.debug("closing a broken NATS connection: %r", error)


def from_url(url: str) -> NatsPublisher:
    """``nats://host:4222[,host2:4222]?subject=T&stream=S&source=SRC&timeout=SEC``.

    ``subject`` is a template over ``{event_type}`` and ``{aggregate_type}``
    (default ``signal_mgmt.{event_type}``).
    """
    server_url, options = split_options(url, _OPTIONS)
    if "?" in server_url:
        raise ConfigError(
            f"unknown NATS option in {redact_url(server_url)!r}; known: {sorted(_OPTIONS)}"
        )
    scheme, _, hosts = server_url.partition("://")
    servers = [f"{scheme}://{host}" for host in hosts.split(",") if host]
    if not servers:
        raise ConfigError(f"NATS URL names no server: {redact_url(url)!r}")
    return NatsPublisher(
        servers,
        subject_template=options.get("subject", DEFAULT_SUBJECT),
        stream=options.get("stream") or None,
        wire_format=CloudEventFormat(source=options.get("source") or DEFAULT_SOURCE),
        timeout=positive_float(options, "timeout", 5.0),
        connect_timeout=positive_float(options, "connect_timeout", 2.0),
        deadline=positive_float(options, "deadline", DEFAULT_DEADLINE),
    )


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _log_error(error: Exception) -> None:
    # Every failure also surfaces as the publish's PublishError; this is detail.
    log.debug("NATS connection error: %r", error)
