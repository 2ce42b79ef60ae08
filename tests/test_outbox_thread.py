"""RelayThread: wake-ups (in-process and LISTEN/NOTIFY), stop, crash, health."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from outbox_support import emit_ticks
from signal_mgmt.errors import PublishError, TransientStorageError
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.outbox.events import OutboxMessage
from signal_mgmt.outbox.publishers import InMemoryPublisher
from signal_mgmt.outbox.relay import OutboxRelay
from signal_mgmt.outbox.thread import RelayThread
from signal_mgmt.storage.db import make_engine

HOUR = 3600.0
PATIENCE = 30.0  # generous bound on waiting for a wake-up; never reached when things work


class SignallingPublisher(InMemoryPublisher):
    """Sets ``arrived`` once ``expected`` distinct events were delivered."""

    def __init__(self, expected: int) -> None:
        super().__init__()
        self.expected = expected
        self.arrived = threading.Event()

    def publish(self, messages: Sequence[OutboxMessage]) -> None:
        super().publish(messages)
        if len(self.event_ids()) >= self.expected:
            self.arrived.set()


def relay_thread(engine: Engine, publisher: InMemoryPublisher, clock: ManualClock) -> RelayThread:
    relay = OutboxRelay(engine, publisher, clock=clock)
    return RelayThread(relay, poll_interval=HOUR)


def test_emit_in_this_process_wakes_the_relay(engine: Engine, clock: ManualClock) -> None:
    publisher = SignallingPublisher(expected=3)
    with relay_thread(engine, publisher, clock):
        emit_ticks(engine, clock, range(3))  # the thread sleeps for an hour unless woken
        assert publisher.arrived.wait(PATIENCE)
    assert [m.payload["n"] for m in publisher.messages] == [0, 1, 2]


@pytest.mark.postgres_only
def test_notify_from_another_connection_wakes_the_relay(
    engine: Engine, database_url: str, clock: ManualClock
) -> None:
    # Same database under another host name: the in-process doorbell does not
    # ring for it, so only PostgreSQL's NOTIFY can wake the relay.
    other_url = make_url(database_url).set(host="localhost")
    other = make_engine(other_url.render_as_string(hide_password=False))
    publisher = SignallingPublisher(expected=2)
    try:
        with relay_thread(engine, publisher, clock):
            emit_ticks(other, clock, range(2))
            assert publisher.arrived.wait(PATIENCE)
    finally:
        other.dispose()


def test_stop_interrupts_a_backoff(engine: Engine, clock: ManualClock) -> None:
    class AlwaysDown(InMemoryPublisher):
        def __init__(self) -> None:
            super().__init__()
            self.tried = threading.Event()

        def publish(self, messages: Sequence[OutboxMessage]) -> None:
            self.tried.set()
            raise PublishError("broker down")

    publisher = AlwaysDown()
    relay = OutboxRelay(engine, publisher, clock=clock, backoff_initial=HOUR, backoff_max=HOUR)
    thread = RelayThread(relay, poll_interval=HOUR).start()
    emit_ticks(engine, clock, [1])
    assert publisher.tried.wait(PATIENCE)
    thread.stop(timeout=PATIENCE)  # the hour-long backoff would keep it running
    health = thread.health()
    assert (health.running, health.pending, health.in_flight, health.dead) == (False, 1, 0, 0)


def test_a_crash_is_re_raised_on_stop(engine: Engine, clock: ManualClock) -> None:
    class Buggy(InMemoryPublisher):
        def publish(self, messages: Sequence[OutboxMessage]) -> None:
            raise ZeroDivisionError("bug in a host publisher")

    thread = relay_thread(engine, Buggy(), clock).start()
    emit_ticks(engine, clock, [1])
    thread._thread.join(PATIENCE)  # type: ignore[union-attr]
    with pytest.raises(ZeroDivisionError):
        thread.stop()


def test_health_reports_the_numbers(engine: Engine, clock: ManualClock) -> None:
    emit_ticks(engine, clock, [1, 2])
    clock.advance(timedelta(seconds=5))
    publisher = SignallingPublisher(expected=2)
    thread = relay_thread(engine, publisher, clock)
    before = thread.health()
    assert (before.running, before.pending, before.oldest_pending_age) == (False, 2, 5.0)
    assert before.lag == 5.0
    with thread:
        assert publisher.arrived.wait(PATIENCE)
        assert thread.health().running
    health = thread.health()  # after stop: the batch in hand is marked and counted
    assert health.published_total == 2
    assert health.last_success == clock.now()
    assert (health.pending, health.oldest_pending_age, health.publish_errors) == (0, None, 0)
    assert health.latency.observations == 2
    assert health.latency.total == 10.0  # each event waited 5 s on the manual clock


def test_a_full_connection_pool_is_transient_and_the_thread_survives_it(
    database_url: str, clock: ManualClock
) -> None:
    """sqlalchemy's pool TimeoutError was no StorageError: it crashed the relay thread."""
    engine = make_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=0.05)
    publisher = SignallingPublisher(expected=1)
    relay = OutboxRelay(engine, publisher, clock=clock)
    try:
        with engine.connect():  # the host holds every pooled connection
            with pytest.raises(TransientStorageError, match="no free database connection"):
                relay.run_once()
            thread = RelayThread(relay, poll_interval=0.05, listen=False).start()
            relay.stopping.wait(0.3)  # several claims meet the full pool meanwhile
        emit_ticks(engine, clock, [1])
        assert publisher.arrived.wait(PATIENCE)
        thread.stop()  # re-raises a crash of the thread, if any
    finally:
        engine.dispose()
