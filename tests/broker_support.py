"""Helpers for the broker publisher tests: messages, unique names, broker read-back, a TCP proxy.

The servers are those of tests/services.py (NATS JetStream 4222, RabbitMQ 5672, Redis 6379
on loopback unless an environment variable points elsewhere); the run stops at start when one
cannot be reached.
The proxy stands between a publisher and a real broker so a test can cause an
outage (``cut()``: the port refuses connections and live ones are closed), a
silent broker (``freeze()``: connections stay open and accepted, nothing is
forwarded) and a recovery (``restore()``: the same port forwards again) without
touching the shared server.
"""

from __future__ import annotations

import asyncio
import selectors
import socket
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import nats
import pika
import pytest
import redis

from services import NATS, RABBITMQ, REDIS
from signal_mgmt.errors import PublishError
from signal_mgmt.outbox.events import OutboxMessage, event_id_for
from signal_mgmt.outbox.publishers.base import Publisher

NATS_URL, NATS_PORT = NATS.url, NATS.port
AMQP_URL, AMQP_PORT = RABBITMQ.url, RABBITMQ.port
REDIS_URL, REDIS_PORT = REDIS.url, REDIS.port

CREATED_AT = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


def unique_name(prefix: str) -> str:
    """A stream / queue / key name no parallel test run shares."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def message(
    n: int,
    key: str = "k1",
    *,
    event_type: str = "SIGNAL_DETECTED",
    salt: str = "",
    headers: dict[str, Any] | None = None,
) -> OutboxMessage:
    return OutboxMessage(
        id=n,
        event_id=event_id_for(event_type, f"{salt}:{key}:{n}"),
        event_type=event_type,
        aggregate_type="signal",
        aggregate_id=f"sig-{n}",
        partition_key=key,
        payload={"n": n, "key": key, "price": "101.05"},
        headers=headers or {},
        created_at=CREATED_AT,
        attempts=0,
    )


def batch(count: int, keys: Sequence[str] = ("k1", "k2"), *, start: int = 0) -> list[OutboxMessage]:
    """``count`` messages over ``keys`` round-robin, unique event ids per call site salt."""
    salt = uuid.uuid4().hex
    return [message(n, keys[n % len(keys)], salt=salt) for n in range(start, start + count)]


def first_seen_order(event_ids: Sequence[str]) -> list[str]:
    """Delivery order after dropping re-deliveries (what an idempotent consumer sees)."""
    seen: set[str] = set()
    order = []
    for event_id in event_ids:
        if event_id not in seen:
            seen.add(event_id)
            order.append(event_id)
    return order


def ids(messages: Sequence[OutboxMessage]) -> list[str]:
    return [str(m.event_id) for m in messages]


# --------------------------------------------------------------------------- NATS JetStream


@dataclass(frozen=True)
class StoredNatsMessage:
    subject: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class NatsStream:
    """A JetStream stream of this test only, over subjects ``<prefix>.>``."""

    name: str
    prefix: str

    def subject_template(self) -> str:
        return f"{self.prefix}.{{event_type}}"

    def stored(self) -> list[StoredNatsMessage]:
        return asyncio.run(self._stored())

    def event_ids(self) -> list[str]:
        return [record.headers["Nats-Msg-Id"] for record in self.stored()]

    async def _stored(self) -> list[StoredNatsMessage]:
        client = await nats.connect(NATS_URL)
        try:
            jetstream = client.jetstream()
            info = await jetstream.stream_info(self.name)
            records: list[StoredNatsMessage] = []
            if info.state.messages == 0:
                return records
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                raw = await jetstream.get_msg(self.name, seq)
                records.append(
                    StoredNatsMessage(raw.subject or "", dict(raw.headers or {}), raw.data or b"")
                )
            return records
        finally:
            await client.close()


async def _manage_stream(name: str, prefix: str, *, create: bool) -> None:
    client = await nats.connect(NATS_URL)
    try:
        if create:
            await client.jetstream().add_stream(name=name, subjects=[f"{prefix}.>"])
        else:
            await client.jetstream().delete_stream(name)
    finally:
        await client.close()


@contextmanager
def nats_stream() -> Iterator[NatsStream]:
    name = unique_name("SM_TEST").upper()
    stream = NatsStream(name=name, prefix=name.lower())
    asyncio.run(_manage_stream(stream.name, stream.prefix, create=True))
    try:
        yield stream
    finally:
        asyncio.run(_manage_stream(stream.name, stream.prefix, create=False))


# --------------------------------------------------------------------------- RabbitMQ


@dataclass(frozen=True)
class ReceivedAmqpMessage:
    routing_key: str
    properties: pika.BasicProperties
    body: bytes


@dataclass
class AmqpBinding:
    """An exchange of this test only and an exclusive queue bound to it with ``#``."""

    exchange: str
    queue: str
    connection: pika.BlockingConnection
    _taken: list[ReceivedAmqpMessage] = field(default_factory=list)

    def received(self) -> list[ReceivedAmqpMessage]:
        """Everything the queue received so far (reading takes messages off the queue)."""
        channel = self.connection.channel()
        while True:
            method, properties, body = channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                break
            # a message was taken, so the broker sent all of its parts
            assert method.routing_key is not None
            assert properties is not None
            assert body is not None
            self._taken.append(ReceivedAmqpMessage(method.routing_key, properties, body))
        channel.close()
        return list(self._taken)

    def message_ids(self) -> list[str]:
        return [str(record.properties.message_id) for record in self.received()]

    def delete_exchange(self, exchange: str) -> None:
        channel = self.connection.channel()
        channel.exchange_delete(exchange)
        channel.close()


@contextmanager
def amqp_binding() -> Iterator[AmqpBinding]:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    exchange, queue = unique_name("sm_test_x"), unique_name("sm_test_q")
    channel.exchange_declare(exchange, "topic", durable=True)
    channel.queue_declare(queue, exclusive=True)
    channel.queue_bind(queue, exchange, routing_key="#")
    try:
        yield AmqpBinding(exchange, queue, connection)
    finally:
        channel.exchange_delete(exchange)
        connection.close()


# --------------------------------------------------------------------------- Redis


@dataclass
class RedisKeys:
    """Keys under a prefix of this test only; deleted afterwards."""

    prefix: str
    admin: redis.Redis

    def entries(self, stream: str) -> list[dict[bytes, bytes]]:
        # redis-py types replies loosely; without decode_responses they are bytes
        found = cast(list[tuple[bytes, dict[bytes, bytes]]], self.admin.xrange(stream))
        return [fields for _id, fields in found]

    def event_ids(self, stream: str) -> list[str]:
        return [fields[b"event_id"].decode() for fields in self.entries(stream)]


@contextmanager
def redis_keys() -> Iterator[RedisKeys]:
    admin = redis.Redis.from_url(REDIS_URL)
    admin.ping()
    keys = RedisKeys(unique_name("sm_test"), admin)
    try:
        yield keys
    finally:
        for key in admin.scan_iter(match=f"{keys.prefix}*"):
            admin.delete(key)
        admin.close()


# --------------------------------------------------------------------------- outages


class TcpProxy:
    """A one-thread TCP forwarder from 127.0.0.1:<port> to ``target``."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self._target = (target_host, target_port)
        self._selector = selectors.DefaultSelector()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._selector.register(self._wake_reader, selectors.EVENT_READ, "wake")
        self._lock = threading.Lock()
        self._pairs: dict[socket.socket, socket.socket] = {}
        self._listener: socket.socket | None = None
        self._frozen = False
        self._held: list[socket.socket] = []  # accepted while frozen: never answered
        self._stopping = False
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port: int = probe.getsockname()[1]
        probe.close()
        self._thread = threading.Thread(target=self._run, name="tcp-proxy", daemon=True)
        self._commands: list[str] = []
        self._done = threading.Event()
        self._thread.start()
        self.restore()

    @property
    def url_host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Refuse new connections and close every live one (a broker outage)."""
        self._command("cut")

    def freeze(self) -> None:
        """Keep every connection open and accept new ones, but forward nothing (a hung broker)."""
        self._command("freeze")

    def restore(self) -> None:
        """Accept and forward again (after a freeze, the frozen connections are dropped)."""
        self._command("restore")

    def close(self) -> None:
        self._command("close")
        self._thread.join()
        self._wake_reader.close()
        self._wake_writer.close()
        self._selector.close()

    def _command(self, name: str) -> None:
        self._done.clear()
        with self._lock:
            self._commands.append(name)
        self._wake_writer.send(b"x")
        assert self._done.wait(10), f"tcp proxy did not {name}"

    def _run(self) -> None:
        while not self._stopping:
            for key, _mask in self._selector.select():
                if key.data == "wake":
                    self._wake_reader.recv(64)
                    self._apply_commands()
                elif key.data == "listen":
                    self._accept()
                else:
                    self._pump(key.fileobj)  # type: ignore[arg-type]

    def _apply_commands(self) -> None:
        with self._lock:
            commands, self._commands = self._commands, []
        for name in commands:
            if name in {"cut", "close"}:
                self._close_listener()
                self._drop_all()
                self._stopping = name == "close"
            elif name == "freeze":
                self._frozen = True
                for sock in self._pairs:
                    self._selector.unregister(sock)
            elif name == "restore" and self._frozen:
                self._drop_all()
                self._frozen = False
            if name == "restore" and self._listener is None:
                listener = socket.socket()
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind(("127.0.0.1", self.port))
                listener.listen(64)
                listener.setblocking(False)
                self._selector.register(listener, selectors.EVENT_READ, "listen")
                self._listener = listener
        self._done.set()

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._selector.unregister(self._listener)
            self._listener.close()
            self._listener = None

    def _accept(self) -> None:
        assert self._listener is not None
        client, _ = self._listener.accept()
        if self._frozen:
            self._held.append(client)
            return
        try:
            upstream = socket.create_connection(self._target, timeout=5)
        except OSError:
            client.close()
            return
        for sock in (client, upstream):
            sock.setblocking(True)
            self._selector.register(sock, selectors.EVENT_READ, "pump")
        self._pairs[client] = upstream
        self._pairs[upstream] = client

    def _pump(self, sock: socket.socket) -> None:
        peer = self._pairs.get(sock)
        if peer is None:
            return
        try:
            data = sock.recv(65536)
            if data:
                peer.sendall(data)
                return
        except OSError:
            pass
        self._drop(sock)

    def _drop_all(self) -> None:
        for sock in list(self._pairs):
            self._drop(sock)
        for sock in self._held:
            sock.close()
        self._held.clear()

    def _drop(self, sock: socket.socket) -> None:
        if sock not in self._pairs:
            return
        peer = self._pairs.pop(sock)
        self._pairs.pop(peer, None)
        for each in (sock, peer):
            if not self._frozen:  # frozen sockets are not registered
                self._selector.unregister(each)
            each.close()


def publish_through_outage(publisher: Publisher, proxy: TcpProxy, size: int = 5) -> list[str]:
    """Publish, cut the broker off (three publishes, as the relay's retries, fail
    transiently), restore it, publish the failed batch and one more.

    Returns the event ids in the order the broker must have received them first.
    """
    try:
        before, during, after = batch(size), batch(size), batch(size)
        publisher.publish(before)
        proxy.cut()
        for _ in range(3):
            with pytest.raises(PublishError) as raised:
                publisher.publish(during)
            assert raised.value.transient
        proxy.restore()
        publisher.publish(during)
        publisher.publish(after)
    finally:
        close = getattr(publisher, "close", None)
        if close is not None:
            close()
        proxy.close()
    return ids(before) + ids(during) + ids(after)


PATIENCE = 60.0
"""Turns a publish that hangs into a test failure; never reached when publishes have deadlines."""


def publish_through_a_silent_broker(
    publisher: Publisher, proxy: TcpProxy, size: int = 5
) -> list[str]:
    """Publish, make the broker silent (``freeze``): a publish must fail transiently
    instead of hanging; restore it, publish the failed batch and one more.

    Returns the event ids in the order the broker must have received them first.
    """
    outcome: list[BaseException | None] = []

    def attempt(messages: list[OutboxMessage]) -> None:
        try:
            publisher.publish(messages)
            outcome.append(None)
        except BaseException as error:  # handed to the test thread
            outcome.append(error)

    try:
        before, during, after = batch(size), batch(size), batch(size)
        publisher.publish(before)
        proxy.freeze()
        hung = threading.Thread(target=attempt, args=(during,), daemon=True)
        hung.start()
        hung.join(PATIENCE)
        assert not hung.is_alive(), "publish to a silent broker did not give up"
        assert isinstance(outcome[0], PublishError), outcome
        assert outcome[0].transient
        proxy.restore()
        publisher.publish(during)
        publisher.publish(after)
    finally:
        close = getattr(publisher, "close", None)
        if close is not None:
            close()
        proxy.close()
    return ids(before) + ids(during) + ids(after)
