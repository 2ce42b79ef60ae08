"""Operating the outbox on both backends: status, retry-dead, park, replay, purge."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from outbox_support import emit_ticks, event_ids_by_n, first_deliveries, statuses
from signal_mgmt.errors import IllegalTransitionError, InvalidInputError, NotFoundError
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import OutboxRow
from signal_mgmt.outbox import store
from signal_mgmt.outbox.publishers import InMemoryPublisher
from signal_mgmt.outbox.relay import OutboxRelay
from signal_mgmt.outbox.thread import RelayThread


def drain(engine: Engine, clock: ManualClock, publisher: InMemoryPublisher | None = None) -> None:
    relay = OutboxRelay(engine, publisher or InMemoryPublisher(), clock=clock, batch_size=3)
    while relay.run_once():
        pass


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(OutboxRow)).scalar_one()


def test_status_counts_and_oldest_age(engine: Engine, clock: ManualClock) -> None:
    empty = store.outbox_counts(engine, clock)
    assert empty.as_dict() == {
        "pending": 0,
        "in_flight": 0,
        "published": 0,
        "dead": 0,
        "parked": 0,
        "oldest_pending_age_seconds": None,
    }
    emit_ticks(engine, clock, [1, 2])
    drain(engine, clock)
    emit_ticks(engine, clock, [3])
    clock.advance(timedelta(minutes=2))
    emit_ticks(engine, clock, [4], key="other")
    counts = store.outbox_counts(engine, clock)
    assert (counts.pending, counts.published, counts.oldest_pending_age) == (2, 2, 120.0)


def test_retry_dead_errors_write_nothing(engine: Engine, clock: ManualClock) -> None:
    emit_ticks(engine, clock, [1])
    event_id = event_ids_by_n(engine)[1]
    with pytest.raises(IllegalTransitionError):
        store.retry_dead(engine, clock, event_id=event_id)  # it is PENDING, not DEAD
    with pytest.raises(NotFoundError):
        store.retry_dead(engine, clock, event_id=uuid.uuid4())
    with pytest.raises(IllegalTransitionError):
        store.unpark(engine, clock, event_id)
    assert statuses(engine) == {1: "PENDING"}
    assert store.retry_dead(engine, clock) == 0


def test_park_refuses_published_events(engine: Engine, clock: ManualClock) -> None:
    emit_ticks(engine, clock, [1])
    drain(engine, clock)
    with pytest.raises(IllegalTransitionError):
        store.park(engine, clock, event_ids_by_n(engine)[1])
    assert statuses(engine) == {1: "PUBLISHED"}


def test_replay_delivers_again_with_the_same_event_id(engine: Engine, clock: ManualClock) -> None:
    emit_ticks(engine, clock, [1, 2, 3])
    publisher = InMemoryPublisher()
    drain(engine, clock, publisher)
    ids = event_ids_by_n(engine)
    assert store.replay(engine, clock, [ids[2]]) == 1
    assert statuses(engine) == {1: "PUBLISHED", 2: "PENDING", 3: "PUBLISHED"}
    drain(engine, clock, publisher)
    assert [m.event_id for m in publisher.messages] == [ids[1], ids[2], ids[3], ids[2]]


def test_replay_of_an_unknown_event_writes_nothing(engine: Engine, clock: ManualClock) -> None:
    emit_ticks(engine, clock, [1])
    drain(engine, clock)
    with pytest.raises(NotFoundError):
        store.replay(engine, clock, [event_ids_by_n(engine)[1], uuid.uuid4()])
    with pytest.raises(InvalidInputError):
        store.replay(engine, clock, [])
    assert statuses(engine) == {1: "PUBLISHED"}


def test_purge_deletes_old_published_rows_in_batches(engine: Engine, clock: ManualClock) -> None:
    emit_ticks(engine, clock, range(7))
    drain(engine, clock)  # published at t0
    clock.advance(timedelta(days=2))
    emit_ticks(engine, clock, range(7, 9))
    drain(engine, clock)  # published at t0 + 2d
    emit_ticks(engine, clock, [9])  # pending: never purged
    clock.advance(timedelta(days=1))
    assert store.purge_published(engine, clock, timedelta(days=2), batch_size=3) == 7
    assert sorted(statuses(engine)) == [7, 8, 9]
    assert store.purge_published(engine, clock, timedelta(hours=1)) == 2
    assert statuses(engine) == {9: "PENDING"}


@pytest.mark.parametrize(
    ("older_than", "batch_size"), [(timedelta(0), 10), (timedelta(-1), 10), (timedelta(1), 0)]
)
def test_purge_refuses_bad_input(
    engine: Engine, clock: ManualClock, older_than: timedelta, batch_size: int
) -> None:
    emit_ticks(engine, clock, [1])
    drain(engine, clock)
    clock.advance(timedelta(days=1))
    with pytest.raises(InvalidInputError):
        store.purge_published(engine, clock, older_than, batch_size=batch_size)
    assert count(engine) == 1


def test_purge_while_a_relay_drains(engine: Engine, clock: ManualClock) -> None:
    emit_ticks(engine, clock, range(100))
    drain(engine, clock)
    clock.advance(timedelta(days=2))
    emit_ticks(engine, clock, range(100, 400), key="live")
    publisher = InMemoryPublisher()
    thread = RelayThread(OutboxRelay(engine, publisher, clock=clock, batch_size=7))
    with thread:
        deleted = store.purge_published(engine, clock, timedelta(days=1), batch_size=9)
    while OutboxRelay(engine, publisher, clock=clock).run_once():  # whatever the thread left
        pass
    assert deleted == 100
    assert statuses(engine) == dict.fromkeys(range(100, 400), "PUBLISHED")
    assert [m.payload["n"] for m in first_deliveries(publisher.messages)] == list(range(100, 400))
