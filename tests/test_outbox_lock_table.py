"""The lock-table cost of emit's key locks: one lock per distinct key, held to commit.

A transaction that wants more locks than the server's shared lock table holds
fails with "out of shared memory" (53200): no retry of it can succeed, so it is
no transient error; and one emit refuses more than ``MAX_KEYS_PER_EMIT`` keys.
The 53200 test runs on a private cluster (``tests/pg_cluster.py``) with a small
lock table: filling the shared server's would fail other sessions' transactions.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Connection, Engine, text

from outbox_support import statuses, tick
from pg_cluster import PgCluster
from signal_mgmt.errors import InvalidInputError, StorageError, TransientStorageError
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.outbox.emit import MAX_KEYS_PER_EMIT, emit
from signal_mgmt.storage.db import make_engine, transaction


def test_one_emit_refuses_more_distinct_keys_than_the_bound(
    engine: Engine, clock: ManualClock
) -> None:
    """20,000 keys in one emit ran the server out of shared memory, classified transient."""
    too_many = [tick(n, key=f"key{n}") for n in range(MAX_KEYS_PER_EMIT + 1)]
    refused = pytest.raises(InvalidInputError, match="distinct partition keys")
    with refused, transaction(engine) as conn:
        emit(conn, too_many, clock)
    assert statuses(engine) == {}
    with transaction(engine) as conn:
        emit(conn, too_many[:MAX_KEYS_PER_EMIT], clock)
    assert len(statuses(engine)) == MAX_KEYS_PER_EMIT


def test_out_of_shared_memory_is_not_transient() -> None:
    with PgCluster.started({"max_locks_per_transaction": "10", "max_connections": "10"}) as cluster:
        engine = make_engine(cluster.url())
        try:
            with pytest.raises(StorageError) as raised, transaction(engine) as conn:
                conn.execute(
                    text("SELECT count(pg_advisory_xact_lock(n)) FROM generate_series(1, 5000) n")
                )
            assert raised.value.sqlstate == "53200"
            assert not isinstance(raised.value, TransientStorageError)
        finally:
            engine.dispose()


@pytest.mark.postgres_only
def test_emits_in_opposite_key_orders_deadlock_with_a_message_that_says_why(
    engine: Engine, clock: ManualClock
) -> None:
    """Inherent to key locks held to commit; the error used to be a bare 'deadlock detected'."""
    first, second = engine.connect(), engine.connect()
    errors: list[BaseException] = []

    def emit_then_commit(conn: Connection, n: int, key: str) -> None:
        try:
            emit(conn, [tick(n, key)], clock)
            conn.commit()
        except TransientStorageError as error:
            errors.append(error)
            conn.rollback()

    try:
        first.begin()
        second.begin()
        emit(first, [tick(1, "A")], clock)
        emit(second, [tick(2, "B")], clock)
        waiting = threading.Thread(target=emit_then_commit, args=(first, 3, "B"))
        waiting.start()  # first waits for B; second then waits for A: a cycle
        emit_then_commit(second, 4, "A")
        waiting.join()
    finally:
        first.close()
        second.close()
    assert len(errors) == 1
    assert isinstance(errors[0], TransientStorageError)
    assert errors[0].sqlstate == "40P01"
    assert "emit once per transaction" in str(errors[0])
