"""PostgreSQL-only relay guarantees: the commit-order watermark and concurrent claims."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select, text

from conftest import PostgresDatabases
from outbox_support import assert_key_order, emit_ticks, statuses, tick
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import OutboxRow
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


def test_a_lower_id_committed_late_is_not_overtaken(engine: Engine, clock: ManualClock) -> None:
    publisher = InMemoryPublisher()
    relay = OutboxRelay(engine, publisher, clock=clock)
    with engine.connect() as early, engine.connect() as late:
        early_tx = early.begin()
        emit(early, tick(1, "a"), clock)  # id 1, its transaction stays open
        with late.begin():
            emit(late, [tick(2, "a"), tick(3, "b")], clock)  # ids 2, 3 commit first
        ids = dict(late.execute(select(OutboxRow.id, OutboxRow.xact_id)).tuples().all())
        assert sorted(ids) == [2, 3]  # id 1 is invisible: a commit-order gap
        drain(relay)
        assert publisher.messages == []  # 2 would overtake 1; 3 waits for the watermark too
        early_tx.commit()
    drain(relay)
    assert numbers(publisher) == [1, 2, 3]


def test_a_rolled_back_gap_does_not_block(engine: Engine, clock: ManualClock) -> None:
    publisher = InMemoryPublisher()
    relay = OutboxRelay(engine, publisher, clock=clock)
    with engine.connect() as early:
        early_tx = early.begin()
        emit(early, tick(1, "a"), clock)
        emit_ticks(engine, clock, [2], key="a")
        drain(relay)
        assert publisher.messages == []
        early_tx.rollback()
    drain(relay)
    assert numbers(publisher) == [2]


def test_a_key_locked_by_a_concurrent_claim_is_left_to_it(
    engine: Engine, clock: ManualClock
) -> None:
    emit_ticks(engine, clock, [1, 2, 3], key="a")
    emit_ticks(engine, clock, [4], key="b")
    publisher = InMemoryPublisher()
    relay = OutboxRelay(engine, publisher, clock=clock)
    with engine.connect() as other_relay, other_relay.begin():
        # Another relay's claim transaction has just locked the head of key a.
        other_relay.execute(text("SELECT id FROM outbox WHERE id = 1 FOR UPDATE"))
        relay.run_once()  # SKIP LOCKED hands it 2 and 3 of key a: they must be dropped
        assert numbers(publisher) == [4]
    drain(relay)
    assert numbers(publisher) == [4, 1, 2, 3]
    assert_key_order(publisher.messages)
    assert set(statuses(engine).values()) == {"PUBLISHED"}


def test_a_row_locked_between_two_of_ours_stops_the_key_there(
    engine: Engine, clock: ManualClock
) -> None:
    emit_ticks(engine, clock, [1, 2, 3], key="a")
    publisher = InMemoryPublisher()
    relay = OutboxRelay(engine, publisher, clock=clock)
    with engine.connect() as other_relay, other_relay.begin():
        # Another claim holds row 2: SKIP LOCKED hands us 1 and 3; 3 must not go.
        other_relay.execute(text("SELECT id FROM outbox WHERE id = 2 FOR UPDATE"))
        relay.run_once()
        assert numbers(publisher) == [1]
    drain(relay)
    assert numbers(publisher) == [1, 2, 3]


def test_a_write_transaction_in_another_database_does_not_hold_the_relay(
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
                assert numbers(publisher) == [1]  # held back: it may still write the outbox
            drain(relay)
            assert numbers(publisher) == [1, 2]
    finally:
        other.dispose()
        pg_databases.drop(name)
