"""emit: dedup by event_id, rollback, bad input, fan-out beyond one statement."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from outbox_support import Tick, statuses, tick
from signal_mgmt.errors import InvalidInputError
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import OutboxRow
from signal_mgmt.outbox.emit import MAX_ROWS_PER_INSERT, emit
from signal_mgmt.outbox.events import MAX_HEADERS_BYTES, Event, event_id_for
from signal_mgmt.storage.db import transaction


def test_fan_out_larger_than_one_insert(engine: Engine, clock: ManualClock) -> None:
    total = MAX_ROWS_PER_INSERT * 2 + 7
    with transaction(engine) as conn:
        emit(conn, [tick(n, key=f"k{n % 13}") for n in range(total)], clock)
    with engine.connect() as conn:
        payloads = conn.execute(select(OutboxRow.payload).order_by(OutboxRow.id)).scalars()
        ns = [payload["n"] for payload in payloads]
    assert ns == list(range(total))  # ids follow the order of the events given


def test_the_same_event_twice_in_one_call_is_one_row(engine: Engine, clock: ManualClock) -> None:
    with transaction(engine) as conn:
        ids = emit(conn, [tick(1), tick(2), tick(1)], clock)
    assert ids[0] == ids[2]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(OutboxRow)).scalar_one() == 2


def test_re_emitting_a_fact_makes_no_second_event(engine: Engine, clock: ManualClock) -> None:
    with transaction(engine) as conn:
        ids = emit(conn, [tick(n) for n in range(300)], clock)
    with transaction(engine) as conn:
        emit(conn, [tick(n) for n in range(0, 300, 7)], clock)
    assert len(statuses(engine)) == 300
    assert ids[0] == event_id_for("TICK", "tick:0")


def test_rolled_back_emit_leaves_nothing(engine: Engine, clock: ManualClock) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction(engine) as conn:
        emit(conn, tick(1), clock)
        raise Boom
    assert statuses(engine) == {}


def test_emit_refuses_non_events(engine: Engine, clock: ManualClock) -> None:
    with pytest.raises(InvalidInputError), transaction(engine) as conn:
        emit(conn, [tick(1), {"event_type": "X"}], clock)  # type: ignore[list-item]
    assert statuses(engine) == {}


@pytest.mark.parametrize(
    "bad",
    [{"event_type": ""}, {"event_type": "has space"}, {"aggregate_id": ""}, {"partition_key": ""}],
)
def test_malformed_event_is_an_invalid_input_error(bad: dict[str, str]) -> None:
    fields = {
        "event_type": "TICK",
        "aggregate_type": "test",
        "aggregate_id": "1",
        "idempotency_key": "k",
        "payload": Tick(n=1),
        **bad,
    }
    with pytest.raises(InvalidInputError):
        Event[Tick](**fields)


def test_headers_over_the_limit_are_refused_at_the_event() -> None:
    """70 KB of headers was accepted, and the broker refused the event for good at the relay."""
    fields = {
        "event_type": "TICK",
        "aggregate_type": "test",
        "aggregate_id": "1",
        "idempotency_key": "k",
        "payload": Tick(n=1),
    }
    Event[Tick](**fields, headers={"x": "A" * (MAX_HEADERS_BYTES - 1)})
    with pytest.raises(InvalidInputError, match="headers"):
        Event[Tick](**fields, headers={"x": "A" * MAX_HEADERS_BYTES})
