"""The relay's fault handling: the library's hooks on a host's engine, transient errors."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, exc, text

from outbox_support import emit_ticks, tick
from pg_cluster import free_port
from signal_mgmt.errors import (
    StorageError,
    TransientStorageError,
    translate,
    translate_db_errors,
)
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.outbox.emit import emit
from signal_mgmt.outbox.publishers import InMemoryPublisher
from signal_mgmt.outbox.relay import OutboxRelay
from signal_mgmt.outbox.thread import RelayThread
from signal_mgmt.storage.db import make_engine


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
