"""PostgreSQL-only relay guarantees: writers of a key queue, relays leave keys in flight alone."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, text

from conftest import PostgresDatabases
from outbox_support import assert_key_order, emit_ticks, statuses, tick
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.outbox import store
from signal_mgmt.outbox.claim import KEY_LOCK_SPACE
from signal_mgmt.outbox.emit import emit
from signal_mgmt.outbox.publishers import InMemoryPublisher
from signal_mgmt.outbox.relay import OutboxRelay
from signal_mgmt.storage.db import make_engine

pytestmark = pytest.mark.postgres_only


def numbers(publisher: InMemoryPublisher) -> list[int]:
    return [m.payload["n"] for m in publisher.messages]


def drain(relay: OutboxRelay) -> None:
    while relay.run_once():
        pass


def test_an_open_writer_holds_back_only_its_own_keys(engine: Engine, clock: ManualClock) -> None:
    publisher = InMemoryPublisher()
    relay = OutboxRelay(engine, publisher, clock=clock)
    with engine.connect() as early:
        early_tx = early.begin()
        emit(early, tick(1, "a"), clock)  # id 1, its transaction stays open
        emit_ticks(engine, clock, [2], key="b")
        drain(relay)
        assert numbers(publisher) == [2]  # no watermark: another key flows at once
        early_tx.commit()
    drain(relay)
    assert numbers(publisher) == [2, 1]


def test_a_writer_of_a_key_waits_for_the_open_one_and_a_rollback_frees_it(
    engine: Engine, clock: ManualClock
) -> None:
    publisher = InMemoryPublisher()
    relay = OutboxRelay(engine, publisher, clock=clock)
    with engine.connect() as early:
        early_tx = early.begin()
        emit(early, tick(1, "a"), clock)
        early_pid = early.execute(text("SELECT pg_backend_pid()")).scalar_one()
        second = threading.Thread(target=emit_ticks, args=(engine, clock, [2]), kwargs={"key": "a"})
        second.start()
        while not waiting_for(engine, early_pid):
            second.join(0.01)  # the second writer of key a queues behind the open one
        drain(relay)
        assert publisher.messages == []
        early_tx.rollback()
        second.join()
    drain(relay)
    assert numbers(publisher) == [2]


def waiting_for(engine: Engine, holder_pid: int) -> bool:
    """Some session waits for a lock that ``holder_pid`` holds."""
    with engine.connect() as conn:
        query = text(
            "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"
        )
        return bool(conn.execute(query, {"pid": holder_pid}).scalar_one())


def test_a_key_another_relay_has_in_flight_is_left_to_it(
    engine: Engine, clock: ManualClock
) -> None:
    emit_ticks(engine, clock, [1, 2, 3], key="a")
    emit_ticks(engine, clock, [4], key="b")
    publisher = InMemoryPublisher()
    relay = OutboxRelay(engine, publisher, clock=clock)
    with engine.connect() as other_relay:
        # Another relay holds key a in flight: its key lock, as claim.CLAIM takes it.
        lock = text("SELECT pg_advisory_lock(:space, hashtext('a'))")
        other_relay.execute(lock, {"space": KEY_LOCK_SPACE})
        drain(relay)
        assert numbers(publisher) == [4]
        assert store.outbox_counts(engine, clock).in_flight == 3
        other_relay.execute(text("SELECT pg_advisory_unlock_all()"))
    drain(relay)
    assert numbers(publisher) == [4, 1, 2, 3]
    assert_key_order(publisher.messages)
    assert set(statuses(engine).values()) == {"PUBLISHED"}


def test_an_open_write_transaction_does_not_hold_the_relay(
    engine: Engine, clock: ManualClock, pg_databases: PostgresDatabases
) -> None:
    name = pg_databases.create(template=None)
    other = make_engine(pg_databases.url_for(name).render_as_string(hide_password=False))
    publisher = InMemoryPublisher()
    relay = OutboxRelay(engine, publisher, clock=clock)
    try:
        with other.connect() as conn, conn.begin():
            conn.execute(text("SELECT pg_current_xact_id()"))  # an open write transaction
            emit_ticks(engine, clock, [1])
            drain(relay)
            assert numbers(publisher) == [1]
            with engine.connect() as ours, ours.begin():
                ours.execute(text("SELECT pg_current_xact_id()"))  # one in OUR database
                emit_ticks(engine, clock, [2])
                drain(relay)
                assert numbers(publisher) == [1, 2]  # nor one in ours (no watermark)
    finally:
        other.dispose()
        pg_databases.drop_soon(name)
