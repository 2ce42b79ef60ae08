"""Hypothesis state machine of the outbox, on SQLite and PostgreSQL, a fresh database per example.

Transactions emit and then commit or roll back (interleaved on PostgreSQL, each key written
by one open transaction at a time as emit's key locks make it; SQLite has one writer), relays
run, another relay holds a key in flight, relays crash between publish and mark, and the
publisher fails transiently or permanently. Invariants: nothing of a rolled-back transaction
is ever delivered, each key's first deliveries come in id order, and in the end every
committed event is delivered, once after de-duplication by event_id.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Connection, Engine, RootTransaction, select, text

from conftest import Backend
from outbox_support import assert_key_order, first_deliveries, tick
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import OutboxRow
from signal_mgmt.outbox import store
from signal_mgmt.outbox.claim import KEY_LOCK_SPACE
from signal_mgmt.outbox.emit import emit
from signal_mgmt.outbox.events import OutboxMessage, event_id_for
from signal_mgmt.outbox.publishers import InMemoryPublisher
from signal_mgmt.outbox.relay import OutboxRelay
from signal_mgmt.storage.db import make_engine

LEASE = timedelta(seconds=30)
_START = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
KEYS = st.sampled_from(["a", "b", "c"])


class Crash(Exception):
    """The relay process dies after the broker took the batch, before the mark."""


class ChaosPublisher(InMemoryPublisher):
    def __init__(self) -> None:
        super().__init__()
        self.crash_next = False

    def publish(self, messages: Sequence[OutboxMessage]) -> None:
        super().publish(messages)
        if self.crash_next:
            self.crash_next = False
            raise Crash


@dataclass
class OpenTransaction:
    connection: Connection
    transaction: RootTransaction
    events: list[uuid.UUID] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)


class OutboxMachine(RuleBasedStateMachine):
    new_database: Callable[[], tuple[str, Callable[[], None]]]
    concurrent: bool  # PostgreSQL: transactions interleave with each other and with relays

    def __init__(self) -> None:
        super().__init__()
        url, self._drop = self.new_database()
        self.engine: Engine = make_engine(url)
        self.clock = ManualClock(_START)
        self.publisher = ChaosPublisher()
        self.relay = OutboxRelay(
            self.engine, self.publisher, clock=self.clock, batch_size=3, max_attempts=3,
            sleep=lambda _seconds: None, lease=LEASE,
        )  # fmt: skip
        self.open: list[OpenTransaction] = []
        self.committed: set[uuid.UUID] = set()
        self.rolled_back: set[uuid.UUID] = set()
        self.next_n = 0

    # -- transactions -------------------------------------------------------------------
    @precondition(lambda self: len(self.open) < (3 if self.concurrent else 1))
    @rule(keys=st.lists(KEYS, min_size=1, max_size=3))
    def begin_and_emit(self, keys: list[str]) -> None:
        connection = self.engine.connect()
        opened = OpenTransaction(connection, connection.begin())
        self.open.append(opened)
        self._emit(opened, keys)

    @precondition(lambda self: self.open)
    @rule(data=st.data(), keys=st.lists(KEYS, min_size=1, max_size=3))
    def emit_more(self, data: st.DataObject, keys: list[str]) -> None:
        self._emit(data.draw(st.sampled_from(self.open)), keys)

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def commit(self, data: st.DataObject) -> None:
        opened = self._close(data)
        opened.transaction.commit()
        opened.connection.close()
        self.committed.update(opened.events)

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def roll_back(self, data: st.DataObject) -> None:
        opened = self._close(data)
        opened.transaction.rollback()
        opened.connection.close()
        self.rolled_back.update(opened.events)

    # -- relay --------------------------------------------------------------------------
    @precondition(lambda self: self.concurrent or not self.open)
    @rule()
    def relay_runs(self) -> None:
        self.relay.run_once()

    @precondition(lambda self: self.concurrent or not self.open)
    @rule()
    def relay_crashes_between_publish_and_mark(self) -> None:
        self.publisher.crash_next = True
        with contextlib.suppress(Crash):
            self.relay.run_once()
        self.publisher.crash_next = False

    @rule(times=st.integers(1, 4), transient=st.booleans())
    def publisher_fails(self, times: int, transient: bool) -> None:
        self.publisher.fail_next(times, transient=transient)

    @rule()
    def leases_run_out(self) -> None:
        self.clock.advance(LEASE + timedelta(seconds=1))

    @precondition(lambda self: self.concurrent or not self.open)
    @rule()
    def operator_retries_dead(self) -> None:
        store.retry_dead(self.engine, self.clock)

    @precondition(lambda self: self.concurrent)
    @rule(key=KEYS)
    def relay_runs_while_another_relay_holds_a_key(self, key: str) -> None:
        """Another relay has ``key`` in flight (its key lock, as claim.CLAIM takes it)."""
        with self.engine.connect() as other:
            lock = text("SELECT pg_advisory_lock(:space, hashtext(:key))")
            other.execute(lock, {"space": KEY_LOCK_SPACE, "key": key})
            before = len(self.publisher.messages)
            self.relay.run_once()
            assert key not in {m.partition_key for m in self.publisher.messages[before:]}
            other.execute(text("SELECT pg_advisory_unlock_all()"))

    # -- invariants ---------------------------------------------------------------------
    @invariant()
    def nothing_rolled_back_or_uncommitted_is_delivered(self) -> None:
        delivered = {m.event_id for m in self.publisher.messages}
        assert delivered <= self.committed
        assert not delivered & self.rolled_back

    @invariant()
    def each_key_in_order(self) -> None:
        assert_key_order(self.publisher.messages)

    def teardown(self) -> None:
        try:
            for opened in self.open:
                opened.transaction.rollback()
                opened.connection.close()
                self.rolled_back.update(opened.events)
            self.open.clear()
            self._drain_everything()
            delivered = [m.event_id for m in first_deliveries(self.publisher.messages)]
            assert sorted(delivered) == sorted(self.committed)  # each exactly once, deduped
            with self.engine.connect() as conn:
                statuses = set(conn.execute(select(OutboxRow.status)).scalars())
            assert statuses <= {"PUBLISHED"}
            assert_key_order(self.publisher.messages)
        finally:
            self.engine.dispose()
            self._drop()

    def _drain_everything(self) -> None:
        self.publisher.fail_next(0)
        self.publisher.crash_next = False
        store.retry_dead(self.engine, self.clock)
        self.clock.advance(LEASE + timedelta(seconds=1))
        while self.relay.run_once():
            pass

    def _emit(self, opened: OpenTransaction, keys: list[str]) -> None:
        # A second open writer of a key would wait for the first one's end (emit's
        # key lock): in this single thread, that is a deadlock. Its keys are skipped.
        taken = {key for other in self.open if other is not opened for key in other.keys}
        keys = [key for key in keys if key not in taken]
        opened.keys.update(keys)
        events = []
        for key in keys:
            events.append(tick(self.next_n, key))
            self.next_n += 1
        emit(opened.connection, events, self.clock)
        opened.events.extend(event_id_for("TICK", f"tick:{e.payload.n}") for e in events)

    def _close(self, data: st.DataObject) -> OpenTransaction:
        opened = data.draw(st.sampled_from(self.open))
        self.open.remove(opened)
        return opened


def test_outbox_state_machine(
    backend: Backend, database_url: str, emptied_engine: Callable[[], Engine]
) -> None:
    def new_database() -> tuple[str, Callable[[], None]]:
        emptied_engine()  # each example starts on the test's database, emptied
        return database_url, lambda: None  # the fixture drops it after the last example

    machine = type(
        f"OutboxMachine_{backend.name}",
        (OutboxMachine,),
        {"new_database": staticmethod(new_database), "concurrent": backend.is_postgres},
    )
    run_state_machine_as_test(machine)
