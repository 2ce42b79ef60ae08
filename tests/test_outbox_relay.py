"""The relay on both backends: order, retries, DEAD and the key-blocking policy, leases."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from outbox_support import assert_key_order, emit_ticks, event_ids_by_n, statuses
from signal_mgmt.errors import InvalidInputError, PublishError
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import OutboxRow
from signal_mgmt.outbox import store
from signal_mgmt.outbox.events import OutboxMessage
from signal_mgmt.outbox.publishers import InMemoryPublisher
from signal_mgmt.outbox.relay import OutboxRelay


class Crash(Exception):
    """Stands for the relay process dying between publish and mark."""


class CrashAfterPublish(InMemoryPublisher):
    def publish(self, messages: Sequence[OutboxMessage]) -> None:
        super().publish(messages)
        raise Crash


class PoisonPublisher(InMemoryPublisher):
    """Refuses (permanently) any call containing event n == poison."""

    def __init__(self, poison: int) -> None:
        super().__init__()
        self.poison = poison

    def publish(self, messages: Sequence[OutboxMessage]) -> None:
        if any(m.payload["n"] == self.poison for m in messages):
            raise PublishError("broker refuses n", transient=False)
        super().publish(messages)


def relay_for(
    engine: Engine, publisher: InMemoryPublisher, clock: ManualClock, **kw: Any
) -> tuple[OutboxRelay, list[float]]:
    sleeps: list[float] = []
    options: dict[str, Any] = {"batch_size": 4, "max_attempts": 3, "sleep": sleeps.append}
    options.update(kw)
    return OutboxRelay(engine, publisher, clock=clock, **options), sleeps


def drain(relay: OutboxRelay) -> int:
    """Run until nothing is claimable; return how many events were published."""
    before = relay.metrics.snapshot().published_total
    while relay.run_once():
        pass
    return relay.metrics.snapshot().published_total - before


def numbers(publisher: InMemoryPublisher) -> list[int]:
    return [m.payload["n"] for m in publisher.messages]


def test_publishes_every_event_in_key_order(engine: Engine, clock: ManualClock) -> None:
    emit_ticks(engine, clock, range(0, 6), key="a")
    emit_ticks(engine, clock, range(6, 9), key="b")
    emit_ticks(engine, clock, range(9, 12), key="a")
    publisher = InMemoryPublisher()
    relay, _ = relay_for(engine, publisher, clock)
    assert drain(relay) == 12
    assert numbers(publisher) == list(range(12))
    assert set(statuses(engine).values()) == {"PUBLISHED"}
    assert_key_order(publisher.messages)
    assert relay.metrics.snapshot().published_total == 12


def test_transient_errors_are_retried_with_backoff(engine: Engine, clock: ManualClock) -> None:
    emit_ticks(engine, clock, range(3))
    publisher = InMemoryPublisher()
    publisher.fail_next(2)
    relay, sleeps = relay_for(engine, publisher, clock, backoff_initial=0.5, backoff_max=4.0)
    assert relay.run_once() == 3
    assert len(sleeps) == 2  # two backoffs, never slept for real
    assert all(0 <= s <= 4.0 for s in sleeps)
    with engine.connect() as conn:
        assert set(conn.execute(select(OutboxRow.attempts)).scalars()) == {3}
    assert relay.metrics.snapshot().publish_errors == 2


def test_transient_errors_never_make_an_event_dead(engine: Engine, clock: ManualClock) -> None:
    emit_ticks(engine, clock, [1, 2], key="a")
    publisher = InMemoryPublisher()
    publisher.fail_next(40)  # far beyond max_attempts: a long broker outage
    relay, sleeps = relay_for(engine, publisher, clock, max_attempts=3, backoff_max=2.0)
    assert relay.run_once() == 2
    assert len(sleeps) == 40
    assert max(sleeps) <= 2.0  # the backoff is capped
    assert statuses(engine) == {1: "PUBLISHED", 2: "PUBLISHED"}
    assert numbers(publisher) == [1, 2]
    assert relay.metrics.snapshot().dead_letters == 0


def test_a_permanent_error_is_dead_and_blocks_its_key_only(
    engine: Engine, clock: ManualClock
) -> None:
    emit_ticks(engine, clock, [1], key="a")
    publisher = InMemoryPublisher()
    publisher.fail_next(1, transient=False)
    relay, sleeps = relay_for(engine, publisher, clock, max_attempts=3)
    assert relay.run_once() == 1
    assert sleeps == []  # no retry of what cannot succeed
    assert statuses(engine) == {1: "DEAD"}
    with engine.connect() as conn:
        assert "told to fail" in (conn.execute(select(OutboxRow.last_error)).scalar_one() or "")

    emit_ticks(engine, clock, [2, 3], key="a")
    emit_ticks(engine, clock, [4], key="b")
    assert drain(relay) == 1
    assert numbers(publisher) == [4]  # key a waits behind its DEAD event
    assert store.outbox_counts(engine, clock).dead == 1

    assert store.retry_dead(engine, clock) == 1
    assert drain(relay) == 3
    assert numbers(publisher) == [4, 1, 2, 3]
    assert_key_order(publisher.messages)


def test_retry_dead_one_event(engine: Engine, clock: ManualClock) -> None:
    emit_ticks(engine, clock, [1], key="a")
    emit_ticks(engine, clock, [2], key="b")
    publisher = InMemoryPublisher()
    publisher.fail_next(2, transient=False)
    relay, _ = relay_for(engine, publisher, clock, batch_size=1)
    drain(relay)
    assert statuses(engine) == {1: "DEAD", 2: "DEAD"}
    ids = event_ids_by_n(engine)
    assert store.retry_dead(engine, clock, event_id=ids[2]) == 1
    assert drain(relay) == 1
    assert statuses(engine) == {1: "DEAD", 2: "PUBLISHED"}


def test_permanent_error_isolates_the_poison_event(engine: Engine, clock: ManualClock) -> None:
    emit_ticks(engine, clock, [1, 2, 3], key="a")
    emit_ticks(engine, clock, [4, 5], key="b")
    publisher = PoisonPublisher(poison=2)
    relay, sleeps = relay_for(engine, publisher, clock, batch_size=10)
    assert relay.run_once() == 5
    assert numbers(publisher) == [1, 4, 5]
    assert sleeps == []  # permanent: no retry
    assert statuses(engine) == {
        1: "PUBLISHED",
        2: "DEAD",
        3: "PENDING",
        4: "PUBLISHED",
        5: "PUBLISHED",
    }
    assert drain(relay) == 0  # 3 stays behind the DEAD 2


def test_park_lets_the_key_flow_and_unpark_delivers_late(
    engine: Engine, clock: ManualClock
) -> None:
    emit_ticks(engine, clock, [1, 2, 3], key="a")
    publisher = PoisonPublisher(poison=1)
    relay, _ = relay_for(engine, publisher, clock)
    drain(relay)
    assert statuses(engine)[1] == "DEAD"
    ids = event_ids_by_n(engine)
    store.park(engine, clock, ids[1])
    assert drain(relay) == 2
    assert numbers(publisher) == [2, 3]
    publisher.poison = -1
    store.unpark(engine, clock, ids[1])
    assert drain(relay) == 1
    assert numbers(publisher) == [2, 3, 1]


def test_crash_between_publish_and_mark_redelivers(engine: Engine, clock: ManualClock) -> None:
    """PostgreSQL: the crashed batch's key locks go with it, another relay re-publishes at
    once. SQLite: its lease holds every key of it until it runs out."""
    emit_ticks(engine, clock, [1, 2], key="a")
    emit_ticks(engine, clock, [3], key="b")
    crashing = CrashAfterPublish()
    first, _ = relay_for(engine, crashing, clock, lease=timedelta(seconds=30))
    with pytest.raises(Crash):
        first.run_once()
    leased = engine.dialect.name == "sqlite"
    counts = store.outbox_counts(engine, clock)
    assert (counts.in_flight, counts.pending) == ((3, 0) if leased else (0, 3))

    publisher = InMemoryPublisher()
    second, _ = relay_for(engine, publisher, clock)
    if leased:
        assert drain(second) == 0  # the lease still holds every key
        emit_ticks(engine, clock, [4], key="a")
        emit_ticks(engine, clock, [5], key="c")
        assert drain(second) == 1  # key c only: a is held behind its leased events
        clock.advance(timedelta(seconds=31))
        assert drain(second) == 4
        assert numbers(publisher) == [5, 1, 2, 3, 4]
    else:
        assert drain(second) == 3
        assert numbers(publisher) == [1, 2, 3]
    assert_key_order(crashing.messages + publisher.messages)
    assert set(statuses(engine).values()) == {"PUBLISHED"}


def test_a_relay_whose_lease_was_taken_over_marks_nothing(
    engine: Engine, clock: ManualClock
) -> None:
    """SQLite: past its lease a batch is taken over. PostgreSQL: the key locks hold it for
    as long as the relay lives, however long the publish takes (bounded by the publisher's
    deadline), so the other relay finds nothing to take."""
    emit_ticks(engine, clock, [1])
    slow = InMemoryPublisher()
    relay, _ = relay_for(engine, slow, clock, lease=timedelta(seconds=5))
    taken_over = []

    class TakeoverDuringPublish(InMemoryPublisher):
        def publish(self, messages: Sequence[OutboxMessage]) -> None:
            clock.advance(timedelta(seconds=6))  # the first relay hangs past its lease
            other, _ = relay_for(engine, slow, clock)
            taken_over.append(drain(other))
            super().publish(messages)

    relay.publisher = TakeoverDuringPublish()
    relay.run_once()
    assert taken_over == ([1] if engine.dialect.name == "sqlite" else [0])
    assert statuses(engine) == {1: "PUBLISHED"}


def test_stop_during_backoff_releases_the_batch(engine: Engine, clock: ManualClock) -> None:
    emit_ticks(engine, clock, [1])
    publisher = InMemoryPublisher()
    publisher.fail_next(5)
    relay, _ = relay_for(engine, publisher, clock, max_attempts=5)
    relay._sleep = lambda _seconds: relay.stopping.set()  # stop arrives during the first backoff
    relay.run_once()
    assert publisher.calls == 1
    counts = store.outbox_counts(engine, clock)
    assert (counts.pending, counts.in_flight, counts.dead) == (1, 0, 0)
    with engine.connect() as conn:
        assert conn.execute(select(OutboxRow.attempts)).scalar_one() == 1


@pytest.mark.parametrize(
    "option",
    [{"batch_size": 0}, {"max_attempts": 0}, {"lease": timedelta(0)}, {"backoff_initial": 0.0}],
)
def test_bad_relay_options_are_refused(
    engine: Engine, clock: ManualClock, option: dict[str, object]
) -> None:
    with pytest.raises(InvalidInputError):
        OutboxRelay(engine, InMemoryPublisher(), clock=clock, **option)  # type: ignore[arg-type]
