"""The relay's fault handling: the library's hooks on a host's engine, transient errors."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, exc, text

from outbox_support import emit_ticks, event_ids_by_n, statuses, tick
from pg_cluster import free_port
from signal_mgmt.errors import (
    PublishError,
    StorageError,
    TransientStorageError,
    translate,
    translate_db_errors,
)
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.outbox.emit import emit
from signal_mgmt.outbox.events import OutboxMessage
from signal_mgmt.outbox.metrics import InFlightBatch
from signal_mgmt.outbox.prometheus import register_metrics
from signal_mgmt.outbox.publishers import InMemoryPublisher
from signal_mgmt.outbox.relay import OutboxRelay
from signal_mgmt.outbox.thread import RelayThread
from signal_mgmt.storage.db import make_engine

HOUR = 3600.0
PATIENCE = 30.0  # turns a hang into a failure; never reached when things work


def kill_backend(engine: Engine, pid: int) -> None:
    with engine.connect() as admin:
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


@pytest.mark.postgres_only
def test_a_host_transaction_survives_a_lost_connection_after_a_relay_ran(
    engine: Engine, database_url: str, clock: ManualClock
) -> None:
    publisher = InMemoryPublisher()
    with RelayThread(OutboxRelay(engine, publisher, clock=clock), poll_interval=0.05):
        emit_ticks(engine, clock, [1])
    host = make_engine(database_url)  # the host's own engine, never given to the library
    try:
        with host.connect() as conn:
            conn.begin()
            emit(conn, [tick(2)], clock)  # flags the connection for the in-process ring
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            kill_backend(engine, pid)  # what a server restart does to every connection
            with pytest.raises(exc.OperationalError):  # the real error, not PendingRollbackError
                conn.execute(text("SELECT 1"))
            conn.rollback()  # the host's cleanup must not raise either
        with host.begin() as conn:  # and the next transaction works
            assert conn.execute(text("SELECT count(*) FROM outbox")).scalar_one() == 1
        with host.connect() as conn:  # as does one on a connection invalidated by hand
            conn.begin()
            conn.invalidate()
            conn.rollback()
            conn.execute(text("SELECT 1"))
            conn.commit()
    finally:
        host.dispose()


@pytest.mark.parametrize(
    "sqlstate", ["57P01", "57P02", "57P03", "08006", "08001", "53300", "40001", "40P01"]
)
def test_server_going_away_is_transient(sqlstate: str) -> None:
    driver_error = psycopg.errors.lookup(sqlstate)("the server said no")
    error = exc.OperationalError("SELECT 1", {}, driver_error)
    assert isinstance(translate(error), TransientStorageError)


@pytest.mark.parametrize("sqlstate", ["42P01", "23505", "22P02"])
def test_a_bad_statement_is_not_transient(sqlstate: str) -> None:
    driver_error = psycopg.errors.lookup(sqlstate)("no")
    error = exc.ProgrammingError("SELECT 1", {}, driver_error)
    assert not isinstance(translate(error), TransientStorageError)


def test_a_refused_connection_is_transient() -> None:
    nobody = make_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/test")
    try:
        with pytest.raises(TransientStorageError), translate_db_errors(), nobody.connect():
            pass
    finally:
        nobody.dispose()


def test_a_sqlite_error_without_sqlstate_is_not_transient(tmp_path: Path) -> None:
    local = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with pytest.raises(StorageError) as raised, translate_db_errors(), local.connect() as conn:
            conn.execute(text("SELECT * FROM no_such_table"))
        assert not isinstance(raised.value, TransientStorageError)
    finally:
        local.dispose()


class HangingPublisher(InMemoryPublisher):
    """Hangs inside ``publish`` (a broker that accepted the connection and went silent)
    until ``unblock`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.unblock = threading.Event()

    def publish(self, messages: Sequence[OutboxMessage]) -> None:
        self.entered.set()
        self.unblock.wait(PATIENCE)
        super().publish(messages)


def test_stop_returns_while_a_publish_hangs_and_the_batch_goes_back(
    engine: Engine, clock: ManualClock
) -> None:
    emit_ticks(engine, clock, [1, 2], key="a")
    first_id = event_ids_by_n(engine)[1]
    hanging = HangingPublisher()
    thread = RelayThread(OutboxRelay(engine, hanging, clock=clock), poll_interval=HOUR).start()
    try:
        assert hanging.entered.wait(PATIENCE)
        publishing = thread.health().publishing
        assert publishing is not None
        assert (publishing.events, publishing.first_event_id) == (2, first_id)
        assert publishing.since == clock.now()
        registry = CollectorRegistry()
        register_metrics(thread, registry)
        clock.advance(timedelta(seconds=5))
        assert registry.get_sample_value("signal_mgmt_outbox_publishing_seconds") == 5.0
        thread.stop()  # returns (used to raise TimeoutError after 10 s)
        other = InMemoryPublisher()  # another relay (or a restart) takes the batch at once
        assert OutboxRelay(engine, other, clock=clock).run_once() == 2
        assert [m.payload["n"] for m in other.messages] == [1, 2]
    finally:
        hanging.unblock.set()
        assert thread._thread is not None
        thread._thread.join(PATIENCE)
    assert statuses(engine) == {1: "PUBLISHED", 2: "PUBLISHED"}


def test_a_retry_names_its_cause_without_credentials(
    engine: Engine, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    emit_ticks(engine, clock, [1])
    seen: list[InFlightBatch | None] = []

    class RefusedTwice(InMemoryPublisher):
        def publish(self, messages: Sequence[OutboxMessage]) -> None:
            if self.calls < 2:
                self.calls += 1
                try:
                    raise ConnectionRefusedError(111, "Connection refused")
                except OSError as error:
                    raise PublishError("cannot reach amqp://guest:s3cret@10.0.0.9/%2F") from error
            seen.append(relay.metrics.snapshot().in_flight)
            super().publish(messages)

    relay = OutboxRelay(engine, RefusedTwice(), clock=clock, sleep=lambda _s: None)
    with caplog.at_level(logging.WARNING, logger="signal_mgmt.outbox.relay"):
        assert relay.run_once() == 1
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2
    for line in retries:
        assert "PublishError: cannot reach amqp://guest:***@10.0.0.9" in line
        assert "caused by ConnectionRefusedError: [Errno 111] Connection refused" in line
        assert "s3cret" not in line
    during = seen[0]  # what health() showed while the batch was being retried
    assert during is not None
    assert during.tries == 2
    assert during.last_error is not None
    assert "ConnectionRefusedError" in during.last_error
    assert relay.metrics.snapshot().in_flight is None
