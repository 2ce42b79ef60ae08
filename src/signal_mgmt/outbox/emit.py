"""Writing events into the outbox, inside the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, literal_column
from sqlalchemy.dialects import postgresql, sqlite

from signal_mgmt.db import Executor, as_connection
from signal_mgmt.errors import InvalidInputError, translate_db_errors
from signal_mgmt.market.clock import Clock
from signal_mgmt.models import OutboxRow, OutboxStatus
from signal_mgmt.outbox import wakeup
from signal_mgmt.outbox.events import Event


def _insert_statement(connection: Connection) -> Any:
    if connection.dialect.name == "postgresql":
        # The writing transaction's 64-bit id: the relay's commit-order watermark.
        return (
            postgresql.insert(OutboxRow)
            .values(xact_id=literal_column("pg_current_xact_id()::text::bigint"))
            .on_conflict_do_nothing(index_elements=["event_id"])
        )
    return sqlite.insert(OutboxRow).on_conflict_do_nothing(index_elements=["event_id"])


def emit(
    connection: Executor, events: Sequence[Event[Any]] | Event[Any], clock: Clock
) -> list[uuid.UUID]:
    """Write ``events`` in the caller's transaction, as ONE multi-row INSERT.

    An event whose ``event_id`` is already stored is skipped silently: the same
    fact announced twice is one event. Returns the ids of all ``events``.
    Nothing is committed here; the events become visible with the caller's commit.
    """
    batch = [events] if isinstance(events, Event) else list(events)
    if not batch:
        return []
    for event in batch:
        if not isinstance(event, Event):
            raise InvalidInputError("emit takes Event instances", field="events", value=event)
    now = clock.now()
    rows = [
        {
            "event_id": event.event_id,
            "event_type": event.event_type,
            "aggregate_type": event.aggregate_type,
            "aggregate_id": event.aggregate_id,
            "partition_key": event.key,
            "payload": event.payload.model_dump(mode="json"),
            "headers": dict(event.headers),
            "created_at": now,
            "available_at": event.available_at or now,
            "attempts": 0,
            "status": OutboxStatus.PENDING.value,
        }
        for event in batch
    ]
    conn = as_connection(connection)
    with translate_db_errors():
        # On PostgreSQL the outbox's statement trigger NOTIFYs the relays at commit.
        conn.execute(_insert_statement(conn), rows)
    wakeup.mark_emitted(conn)
    return [event.event_id for event in batch]
