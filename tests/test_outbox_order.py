"""Relay v2 order and stalls: writers of one key in commit order, rows written by plain SQL,
a key that cannot fill a batch, and an event parked while a relay has it in flight."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence

import pytest
from sqlalchemy import Connection, Engine, text

from outbox_support import assert_key_order, emit_ticks, event_ids_by_n, statuses, tick
from signal_mgmt.errors import IllegalTransitionError, StorageError
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.outbox import store
from signal_mgmt.outbox.emit import emit
from signal_mgmt.outbox.events import OutboxMessage
from signal_mgmt.outbox.publishers import InMemoryPublisher
from signal_mgmt.outbox.relay import OutboxRelay
from signal_mgmt.outbox.thread import RelayThread
from signal_mgmt.storage.db import transaction

PLAIN_INSERT = text(
    "INSERT INTO outbox (event_id, event_type, aggregate_type, aggregate_id, partition_key,"
    " payload, headers, created_at, available_at, attempts, status)"
    " VALUES (:event_id, 'TICK', 'test', :n, :key, :payload, '{}', :at, :at, 0, 'PENDING')"
)


HOUR = 3600.0
PATIENCE = 30.0  # turns a hang into a failure; never reached when things work


def numbers(messages: Sequence[OutboxMessage]) -> list[int]:
    return [m.payload["n"] for m in messages]


def drain(relay: OutboxRelay) -> int:
    total = 0
    while published := relay.run_once():
        total += published
    return total


def insert_plain(conn: Connection, clock: ManualClock, n: int, key: str) -> None:
    """A row written by a writer that is not ``emit`` (no key lock, nothing else set)."""
    params = {"event_id": str(uuid.uuid4()), "n": str(n), "key": key, "at": clock.now()}
    conn.execute(PLAIN_INSERT, params | {"payload": f'{{"n": {n}}}'})


def blocked_on_a_lock(engine: Engine, pid: int) -> bool:
    with engine.connect() as conn:
        query = text("SELECT count(*) FROM pg_locks WHERE pid = :pid AND NOT granted")
        return bool(conn.execute(query, {"pid": pid}).scalar_one())


@pytest.mark.postgres_only
def test_two_writers_of_one_key_publish_in_commit_order(engine: Engine, clock: ManualClock) -> None:
    """The interleaving that broke the xact-id watermark: the writer with the LOWER
    transaction id writes the key second and commits first, while the other is open."""
    publisher = InMemoryPublisher()
    relay = OutboxRelay(engine, publisher, clock=clock)
    committed: list[int] = []
    with engine.connect() as low, engine.connect() as high:
        low_tx = low.begin()
        low.execute(text("SELECT pg_current_xact_id()"))  # takes the lower xact id first
        low_pid = low.execute(text("SELECT pg_backend_pid()")).scalar_one()
        high_tx = high.begin()
        emit(high, tick(1, "k"), clock)

        def low_writer() -> None:
            emit(low, tick(2, "k"), clock)  # waits for the key while ``high`` is open
            low_tx.commit()
            committed.append(2)

        writer = threading.Thread(target=low_writer)
        writer.start()
        while writer.is_alive() and not blocked_on_a_lock(engine, low_pid):
            writer.join(0.01)  # until it committed (no key lock) or waits on the lock
        drain(relay)
        high_tx.commit()
        committed.append(1)
        writer.join()
    drain(relay)
    assert_key_order(publisher.messages)  # id order ...
    assert numbers(publisher.messages) == committed  # ... is the commit order


@pytest.mark.postgres_only
def test_a_plain_sql_writer_takes_the_same_key_lock(engine: Engine, clock: ManualClock) -> None:
    with engine.connect() as plain, plain.begin():
        plain.execute(text("SELECT outbox_lock_keys(ARRAY['k'])"))
        with engine.connect() as writer:
            writer.execute(text("SET lock_timeout = '50ms'"))
            with pytest.raises(StorageError), transaction(engine, writer):
                emit(writer, tick(1, "k"), clock)  # waits for the plain writer's commit
            writer.rollback()
            with transaction(engine, writer):
                emit(writer, tick(2, "other"), clock)  # another key does not wait
            writer.commit()
    assert statuses(engine) == {2: "PENDING"}


def test_a_row_written_by_plain_sql_is_relayed(engine: Engine, clock: ManualClock) -> None:
    with transaction(engine) as conn:
        insert_plain(conn, clock, 1, "k")
    emit_ticks(engine, clock, [2], key="k")
    publisher = InMemoryPublisher()
    drain(OutboxRelay(engine, publisher, clock=clock))
    assert numbers(publisher.messages) == [1, 2]


def test_a_long_key_never_fills_the_batch(engine: Engine, clock: ManualClock) -> None:
    """1 plain row + 600 rows of its key + 100 rows of other keys: all published, in order."""
    with transaction(engine) as conn:
        insert_plain(conn, clock, 0, "long")
    emit_ticks(engine, clock, range(1, 601), key="long")
    with transaction(engine) as conn:
        emit(conn, [tick(n, f"other-{n}") for n in range(601, 701)], clock)
    publisher = InMemoryPublisher()
    assert drain(OutboxRelay(engine, publisher, clock=clock, batch_size=50)) == 701
    assert sorted(numbers(publisher.messages)) == list(range(701))
    assert_key_order(publisher.messages)


def test_a_dead_key_never_fills_the_batch(engine: Engine, clock: ManualClock) -> None:
    """The head of a key is DEAD and 600 rows wait behind it: the other keys still flow."""
    emit_ticks(engine, clock, [0], key="stuck")
    publisher = InMemoryPublisher()
    publisher.fail_next(1, transient=False)
    relay = OutboxRelay(engine, publisher, clock=clock, batch_size=50)
    relay.run_once()
    emit_ticks(engine, clock, range(1, 601), key="stuck")
    with transaction(engine) as conn:
        emit(conn, [tick(n, f"other-{n}") for n in range(601, 701)], clock)
    assert drain(relay) == 100
    assert statuses(engine)[0] == "DEAD"


class ParksWhilePublishing(InMemoryPublisher):
    """While the relay publishes its batch, an operator tries to park its event and
    another relay runs."""

    def __init__(self, engine: Engine, clock: ManualClock, broker: InMemoryPublisher) -> None:
        super().__init__()
        self.engine, self.clock, self.broker = engine, clock, broker
        self.other_published: int | None = None

    def publish(self, messages: Sequence[OutboxMessage]) -> None:
        if self.other_published is None:
            with pytest.raises(IllegalTransitionError, match="in flight"):
                store.park(self.engine, self.clock, messages[0].event_id)
            other = OutboxRelay(self.engine, self.broker, clock=self.clock)
            self.other_published = drain(other)
        self.broker.publish(messages)


def test_parking_an_event_in_flight_is_refused_and_nothing_overtakes_it(
    engine: Engine, clock: ManualClock
) -> None:
    emit_ticks(engine, clock, [1, 2], key="k")
    broker = InMemoryPublisher()
    parking = ParksWhilePublishing(engine, clock, broker)
    relay = OutboxRelay(engine, parking, clock=clock, batch_size=1)  # holds 1, not 2
    assert relay.run_once() == 1
    assert parking.other_published == 0  # 2 waits for the copy of 1 in flight
    drain(relay)
    assert numbers(broker.messages) == [1, 2]
    assert statuses(engine) == {1: "PUBLISHED", 2: "PUBLISHED"}


def test_a_hung_publish_handed_back_by_stop_lands_late_as_a_re_delivery_only(
    engine: Engine, clock: ManualClock
) -> None:
    """Parked in flight, then stop(): the hung copy of 1 landed after 2 and 3 (first
    deliveries [2, 3, 1]). The park is now refused, so 1 is published again first."""
    emit_ticks(engine, clock, [1, 2], key="k")
    broker: list[int] = []
    entered, gate = threading.Event(), threading.Event()

    class Hanging(InMemoryPublisher):
        def publish(self, messages: Sequence[OutboxMessage]) -> None:
            entered.set()
            gate.wait()
            broker.extend(numbers(messages))

    class Recording(InMemoryPublisher):
        def publish(self, messages: Sequence[OutboxMessage]) -> None:
            broker.extend(numbers(messages))

    hung = RelayThread(OutboxRelay(engine, Hanging(), clock=clock), poll_interval=HOUR)
    hung.start()
    try:
        assert entered.wait(PATIENCE)
        with pytest.raises(IllegalTransitionError, match="in flight"):
            store.park(engine, clock, event_ids_by_n(engine)[1])
        emit_ticks(engine, clock, [3], key="k")
        hung.stop(timeout=0.1)  # abandons the hung publish, hands its batch back
        while store.outbox_counts(engine, clock).in_flight:  # released (a helper thread)
            entered.wait(0.01)
        drain(OutboxRelay(engine, Recording(), clock=clock))
    finally:
        hung.relay.stopping.set()
        gate.set()
        while hung.alive:  # the hung publish returns, the thread ends
            entered.wait(0.01)
    assert list(dict.fromkeys(broker)) == [1, 2, 3]
