"""The idempotent consumer on both backends.

The handlers here react to an event by emitting one of their own into the
outbox: a realistic consumer write whose presence shows whether the handler's
work committed.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel
from sqlalchemy import Connection, Engine, func, select

from broker_support import message
from signal_mgmt.errors import InvalidInputError
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import InboxRow, OutboxRow
from signal_mgmt.outbox.cloudevents import CloudEventFormat, decode
from signal_mgmt.outbox.emit import emit
from signal_mgmt.outbox.events import Event
from signal_mgmt.outbox.inbox import Inbox
from signal_mgmt.storage.db import transaction


class Reaction(BaseModel):
    to: str


class Boom(Exception):
    pass


def reacting(
    clock: ManualClock, event_id: uuid.UUID, calls: list[uuid.UUID]
) -> Callable[[Connection], None]:
    """A handler that records its call and emits a reaction event in the inbox's transaction."""

    def handler(conn: Connection) -> None:
        calls.append(event_id)
        reaction = Event[Reaction](
            event_type="REACTED",
            aggregate_type="reaction",
            aggregate_id=str(event_id),
            idempotency_key=f"{uuid.uuid4()}",  # a fresh fact per run: duplicates would show
            payload=Reaction(to=str(event_id)),
        )
        emit(conn, reaction, clock)

    return handler


def count(engine: Engine, table: type[InboxRow] | type[OutboxRow]) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_handles_once_and_drops_redeliveries(engine: Engine, clock: ManualClock) -> None:
    inbox = Inbox(engine, consumer="tms", clock=clock)
    msg = message(1)
    calls: list[uuid.UUID] = []
    assert inbox.handle(msg, reacting(clock, msg.event_id, calls)) is True
    assert inbox.handle(msg, reacting(clock, msg.event_id, calls)) is False
    assert inbox.handle(str(msg.event_id), reacting(clock, msg.event_id, calls)) is False
    assert calls == [msg.event_id]
    assert count(engine, OutboxRow) == 1
    assert inbox.seen(msg)


def test_each_consumer_handles_the_event_once(engine: Engine, clock: ManualClock) -> None:
    msg = message(1)
    calls: list[uuid.UUID] = []
    for consumer in ("risk", "ledger", "risk", "ledger"):
        Inbox(engine, consumer, clock).handle(msg, reacting(clock, msg.event_id, calls))
    assert len(calls) == 2
    assert count(engine, InboxRow) == 2


def test_accepts_a_decoded_cloudevent(engine: Engine, clock: ManualClock) -> None:
    msg = message(3)
    event = decode(CloudEventFormat().encode(msg))
    inbox = Inbox(engine, "tms", clock)
    assert inbox.handle(event, lambda conn: None)
    assert not inbox.handle(msg.event_id, lambda conn: None)


def test_a_failing_handler_leaves_no_row_and_runs_again(engine: Engine, clock: ManualClock) -> None:
    inbox = Inbox(engine, "tms", clock)
    msg = message(1)

    def failing(conn: Connection) -> None:
        reacting(clock, msg.event_id, [])(conn)
        raise Boom

    with pytest.raises(Boom):
        inbox.handle(msg, failing)
    assert count(engine, InboxRow) == 0
    assert count(engine, OutboxRow) == 0
    calls: list[uuid.UUID] = []
    assert inbox.handle(msg, reacting(clock, msg.event_id, calls))
    assert calls == [msg.event_id]


def test_in_the_callers_transaction_row_and_writes_commit_together(
    engine: Engine, clock: ManualClock
) -> None:
    inbox = Inbox(engine, "tms", clock)
    msg = message(1)
    with pytest.raises(Boom), transaction(engine) as conn:
        assert inbox.handle(msg, reacting(clock, msg.event_id, []), connection=conn)
        assert inbox.seen(msg, connection=conn)
        raise Boom  # the caller rolls back: the event was not handled after all
    assert count(engine, InboxRow) == 0
    assert count(engine, OutboxRow) == 0
    with transaction(engine) as conn:
        assert inbox.handle(msg, reacting(clock, msg.event_id, []), connection=conn)
    assert count(engine, InboxRow) == 1
    assert count(engine, OutboxRow) == 1


def test_a_failing_handler_in_the_callers_transaction_is_rolled_back_to_its_savepoint(
    engine: Engine, clock: ManualClock
) -> None:
    inbox = Inbox(engine, "tms", clock)
    first, second = message(1), message(2)

    def failing(conn: Connection) -> None:
        reacting(clock, first.event_id, [])(conn)
        raise Boom

    with transaction(engine) as conn:
        with pytest.raises(Boom):
            inbox.handle(first, failing, connection=conn)
        assert inbox.handle(second, reacting(clock, second.event_id, []), connection=conn)
    assert not inbox.seen(first)
    assert inbox.seen(second)
    assert count(engine, OutboxRow) == 1


def test_forget_before_deletes_old_rows_in_batches(engine: Engine, clock: ManualClock) -> None:
    inbox = Inbox(engine, "tms", clock)
    other = Inbox(engine, "other", clock)
    old = [message(n) for n in range(7)]
    for msg in old:
        inbox.handle(msg, lambda conn: None)
        other.handle(msg, lambda conn: None)
    cutoff = clock.advance(timedelta(days=8))
    recent = message(99)
    inbox.handle(recent, lambda conn: None)
    assert inbox.forget_before(cutoff, batch_size=3) == 7
    assert inbox.seen(recent)
    assert not inbox.seen(old[0])
    assert count(engine, InboxRow) == 8  # the other consumer keeps its rows


@pytest.mark.parametrize("consumer", ["", "   ", "x" * 101, None])
def test_bad_consumer_name(engine: Engine, consumer: str) -> None:
    with pytest.raises(InvalidInputError):
        Inbox(engine, consumer)


@pytest.mark.parametrize("event", ["not-a-uuid", 42, None, b"\x00" * 16])
def test_bad_event_reference_writes_nothing(
    engine: Engine, clock: ManualClock, event: object
) -> None:
    calls: list[uuid.UUID] = []
    with pytest.raises(InvalidInputError):
        Inbox(engine, "tms", clock).handle(event, reacting(clock, uuid.uuid4(), calls))  # type: ignore[arg-type]
    assert calls == []
    assert count(engine, InboxRow) == 0


def test_non_callable_handler_writes_nothing(engine: Engine, clock: ManualClock) -> None:
    with pytest.raises(InvalidInputError):
        Inbox(engine, "tms", clock).handle(message(1), "handler")  # type: ignore[arg-type]
    assert count(engine, InboxRow) == 0


def test_bad_forget_arguments(engine: Engine) -> None:
    inbox = Inbox(engine, "tms")
    with pytest.raises(InvalidInputError):
        inbox.forget_before(datetime(2026, 1, 1))  # noqa: DTZ001 - naive on purpose
    with pytest.raises(InvalidInputError):
        inbox.forget_before(datetime(2026, 1, 1).astimezone(), batch_size=0)


@given(data=st.data())
def test_redelivery_of_any_subset_in_any_order_is_handled_once_each(
    engine: Engine, clock: ManualClock, data: st.DataObject
) -> None:
    events = [message(n) for n in range(data.draw(st.integers(1, 8), label="events"))]
    redelivered = data.draw(st.lists(st.sampled_from(events), max_size=12), label="re-deliveries")
    failing = data.draw(st.lists(st.sampled_from(events), max_size=4), label="failed deliveries")
    deliveries = data.draw(st.permutations(events + redelivered + failing), label="order")
    fail_budget = [e.event_id for e in failing]
    inbox = Inbox(engine, consumer=f"prop-{uuid.uuid4().hex}", clock=clock)  # fresh state
    handled: list[uuid.UUID] = []
    for msg in deliveries:

        def handler(conn: Connection, msg_id: uuid.UUID = msg.event_id) -> None:
            if msg_id in fail_budget:  # this delivery's handler fails: it must run again
                fail_budget.remove(msg_id)
                raise Boom
            handled.append(msg_id)

        with contextlib.suppress(Boom):
            inbox.handle(msg, handler)
    # each event was delivered more often than its handler was made to fail
    assert sorted(handled) == sorted(e.event_id for e in events)
    assert len(handled) == len(set(handled))
    assert all(inbox.seen(event_id) for event_id in handled)
    assert not fail_budget
