"""Helpers shared by the outbox tests: events, emitting, reading the outbox."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from pydantic import BaseModel
from sqlalchemy import Engine, select

from signal_mgmt.market.clock import Clock
from signal_mgmt.models import OutboxRow
from signal_mgmt.outbox.emit import emit
from signal_mgmt.outbox.events import Event, OutboxMessage
from signal_mgmt.storage.db import transaction


class Tick(BaseModel):
    n: int


def tick(n: int, key: str = "k") -> Event[Tick]:
    return Event[Tick](
        event_type="TICK",
        aggregate_type="test",
        aggregate_id=str(n),
        idempotency_key=f"tick:{n}",
        partition_key=key,
        payload=Tick(n=n),
    )


def emit_ticks(engine: Engine, clock: Clock, numbers: Iterable[int], key: str = "k") -> None:
    with transaction(engine) as conn:
        emit(conn, [tick(n, key) for n in numbers], clock)


def statuses(engine: Engine) -> dict[int, str]:
    """payload n -> status."""
    with engine.connect() as conn:
        rows = conn.execute(select(OutboxRow.payload, OutboxRow.status)).all()
    return {payload["n"]: status for payload, status in rows}


def event_ids_by_n(engine: Engine) -> dict[int, uuid.UUID]:
    with engine.connect() as conn:
        rows = conn.execute(select(OutboxRow.payload, OutboxRow.event_id)).all()
    return {payload["n"]: event_id for payload, event_id in rows}


def first_deliveries(messages: Sequence[OutboxMessage]) -> list[OutboxMessage]:
    """Each event once, at its first delivery."""
    seen: set[uuid.UUID] = set()
    firsts = []
    for message in messages:
        if message.event_id not in seen:
            seen.add(message.event_id)
            firsts.append(message)
    return firsts


def assert_key_order(messages: Sequence[OutboxMessage]) -> None:
    """Per key, first deliveries come in outbox id order."""
    last: dict[str, int] = {}
    for message in first_deliveries(messages):
        assert message.id > last.get(message.partition_key, 0), message
        last[message.partition_key] = message.id
