"""emit's hot path: ids computed without uuid objects, library events built without
validation, and on PostgreSQL the key locks and the rows in one statement that
still draws a waiting writer's ids only after the lock holder's."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, event, select, text

from outbox_support import tick
from signal_mgmt.entry.events import (
    SIGNAL_PUBLISHED,
    SignalPublished,
    signal_published,
)
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import OutboxRow
from signal_mgmt.outbox.emit import emit
from signal_mgmt.outbox.events import EVENT_NAMESPACE, Event, event_id_for, event_id_hex
from signal_mgmt.outbox.keys import symbol_key
from signal_mgmt.storage.db import transaction


@given(st.text(), st.text())
def test_hex_ids_are_the_uuid5_ids(event_type: str, key: str) -> None:
    expected = uuid.uuid5(EVENT_NAMESPACE, f"{event_type}\x1f{key}")
    assert event_id_hex(event_type, key) == expected.hex
    assert event_id_for(event_type, key) == expected


def test_a_trusted_event_is_the_validated_event() -> None:
    payload = SignalPublished(
        signal_id=7,
        symbol="INFY",
        direction="LONG",
        confluence_type="ORB",
        signal_day=date(2026, 12, 1),
        effective_floor=Decimal("99.05"),
        effective_ceiling=Decimal("100.00"),
        detected_at=datetime(2026, 12, 1, 4, 0, tzinfo=UTC),
        delivery_count=2,
    )
    validated = Event[SignalPublished](
        event_type=SIGNAL_PUBLISHED,
        aggregate_type="signal",
        aggregate_id="7",
        idempotency_key="7",
        partition_key=symbol_key("INFY"),
        payload=payload,
    )
    trusted = signal_published(payload)
    assert trusted.model_dump() == validated.model_dump()
    assert (trusted.event_id, trusted.key) == (validated.event_id, validated.key)


def test_emit_stores_every_column(engine: Engine, clock: ManualClock) -> None:
    later = clock.now() + timedelta(minutes=5)
    event_ = tick(1, "k").model_copy(update={"headers": {"h": "v"}, "available_at": later})
    with transaction(engine) as conn:
        emit(conn, [event_, tick(2, "other")], clock)
    with engine.connect() as conn:
        rows = conn.execute(select(OutboxRow.__table__).order_by(OutboxRow.id)).all()
    assert [(r.event_id, r.partition_key, r.payload) for r in rows] == [
        (event_id_for("TICK", "tick:1"), "k", {"n": 1}),
        (event_id_for("TICK", "tick:2"), "other", {"n": 2}),
    ]
    assert [(r.headers, r.created_at, r.available_at) for r in rows] == [
        ({"h": "v"}, clock.now(), later),
        ({}, clock.now(), clock.now()),
    ]
    assert [(r.aggregate_type, r.aggregate_id, r.attempts) for r in rows] == [
        ("test", "1", 0),
        ("test", "2", 0),
    ]


@pytest.mark.postgres_only
def test_emit_is_one_statement(engine: Engine, clock: ManualClock) -> None:
    seen: list[str] = []
    with transaction(engine) as conn:
        event.listen(conn, "before_cursor_execute", lambda *args: seen.append(args[2]))
        emit(conn, [tick(n, key=f"k{n % 3}") for n in range(50)], clock)
    assert len(seen) == 1


@pytest.mark.postgres_only
def test_a_waiting_writer_draws_its_ids_after_the_lock_holder(
    engine: Engine, clock: ManualClock
) -> None:
    """The lock holder writes the key again while the other writer waits: had the waiting
    writer drawn its id before it waited, its id would lie below the holder's second one
    although it commits after it."""
    with engine.connect() as holder, engine.connect() as waiting:
        holder_tx = holder.begin()
        emit(holder, tick(1, "k"), clock)
        waiting_pid = waiting.execute(text("SELECT pg_backend_pid()")).scalar_one()

        def waiting_writer() -> None:
            emit(waiting, tick(2, "k"), clock)
            waiting.commit()

        writer = threading.Thread(target=waiting_writer)
        writer.start()
        while not _waits_for_a_lock(engine, waiting_pid):
            assert writer.is_alive(), "the second writer did not wait for the key"
            writer.join(0.01)
        emit(holder, tick(3, "k"), clock)
        holder_tx.commit()
        writer.join()
    with engine.connect() as conn:
        payloads = conn.execute(select(OutboxRow.payload).order_by(OutboxRow.id)).scalars()
        assert [payload["n"] for payload in payloads] == [1, 3, 2]  # id order = commit order


def _waits_for_a_lock(engine: Engine, pid: int) -> bool:
    with engine.connect() as conn:
        query = text("SELECT count(*) FROM pg_locks WHERE pid = :pid AND NOT granted")
        return bool(conn.execute(query, {"pid": pid}).scalar_one())
