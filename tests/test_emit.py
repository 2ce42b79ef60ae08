from __future__ import annotations

import pytest
from pydantic import BaseModel
from sqlalchemy import Engine, func, select

from signal_mgmt.db import transaction
from signal_mgmt.errors import InvalidInputError
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import OutboxRow
from signal_mgmt.outbox.emit import emit
from signal_mgmt.outbox.events import Event, event_id_for


class Ping(BaseModel):
    n: int


def ping(n: int, key: str = "k") -> Event[Ping]:
    return Event[Ping](
        event_type="PING",
        aggregate_type="test",
        aggregate_id=str(n),
        idempotency_key=f"ping:{n}",
        partition_key=key,
        payload=Ping(n=n),
    )


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(OutboxRow)).scalar_one()


def test_emit_many_and_dedup_by_event_id(engine: Engine, clock: ManualClock) -> None:
    with transaction(engine) as conn:
        ids = emit(conn, [ping(n) for n in range(300)], clock)
    with transaction(engine) as conn:
        emit(conn, [ping(n) for n in range(0, 300, 7)], clock)
    assert count(engine) == 300
    assert ids[0] == event_id_for("PING", "ping:0")


def test_rolled_back_emit_leaves_nothing(engine: Engine, clock: ManualClock) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction(engine) as conn:
        emit(conn, ping(1), clock)
        raise Boom
    assert count(engine) == 0


def test_emit_refuses_non_events(engine: Engine, clock: ManualClock) -> None:
    with pytest.raises(InvalidInputError), transaction(engine) as conn:
        emit(conn, [ping(1), {"event_type": "X"}], clock)  # type: ignore[list-item]
    assert count(engine) == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"event_type": ""},
        {"event_type": "has space"},
        {"aggregate_id": ""},
        {"partition_key": ""},
    ],
)
def test_malformed_event_is_a_validation_error(bad: dict[str, str]) -> None:
    fields = {
        "event_type": "PING",
        "aggregate_type": "test",
        "aggregate_id": "1",
        "idempotency_key": "k",
        "payload": Ping(n=1),
        **bad,
    }
    with pytest.raises(InvalidInputError):
        Event[Ping](**fields)  # type: ignore[arg-type]
