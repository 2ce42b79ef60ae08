"""The outbox table as the relay and the operators' tools see it: the table handle,
a row mapped to an ``OutboxMessage``, and the ``IN`` list that keeps one prepared plan."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, Engine, Row, Table, any_, bindparam, func
from sqlalchemy.dialects import postgresql

from signal_mgmt.market.clock import Clock, SystemClock
from signal_mgmt.models import OutboxRow
from signal_mgmt.outbox.events import OutboxMessage

outbox = cast(Table, OutboxRow.__table__)


def among(
    column: ColumnElement[Any], values: Sequence[Any], bind: Connection | Engine
) -> ColumnElement[bool]:
    """``column IN values``; one array parameter on PostgreSQL (``= ANY``), so the statement
    text, and its prepared plan, do not change with the number of values."""
    if bind.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(list(values))


def to_message(row: Row[Any]) -> OutboxMessage:
    mapping = row._mapping
    return OutboxMessage(
        id=mapping["id"],
        event_id=mapping["event_id"],
        event_type=mapping["event_type"],
        aggregate_type=mapping["aggregate_type"],
        aggregate_id=mapping["aggregate_id"],
        partition_key=mapping["partition_key"],
        payload=mapping["payload"],
        headers=mapping["headers"],
        created_at=mapping["created_at"],
        attempts=mapping["attempts"],
    )


def server_clock_unless_manual(clock: Clock) -> datetime | None:
    """The ``:now`` of PostgreSQL's emit and claim statements: None, and the statement
    reads the SERVER's clock (``statement_timestamp()``), when ``clock`` is the system
    clock, so that a writer's or a relay's clock skew never delays an event; a manual
    clock (tests, replays) stays the clock."""
    return None if isinstance(clock, SystemClock) else clock.now()


def due_now(clock: Clock, bind: Connection | Engine) -> datetime | ColumnElement[datetime]:
    """``available_at`` for an event due now (released, retried, unparked, replayed):
    on PostgreSQL the server's clock, unless ``clock`` is manual (see above)."""
    if bind.dialect.name == "postgresql" and isinstance(clock, SystemClock):
        return func.statement_timestamp()
    return clock.now()
