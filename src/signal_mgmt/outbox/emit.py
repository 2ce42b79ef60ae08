"""Writing events into the outbox, inside the caller's transaction."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ARRAY, Connection, String, TextClause, Uuid, bindparam, text

from signal_mgmt.errors import InvalidInputError, translate_db_errors
from signal_mgmt.market.clock import Clock
from signal_mgmt.models import JSONDocument, OutboxRow, OutboxStatus, UTCDateTime
from signal_mgmt.outbox import wakeup
from signal_mgmt.outbox.events import Event
from signal_mgmt.storage.db import Executor, as_connection

_COLUMNS = (
    "event_id",
    "event_type",
    "aggregate_type",
    "aggregate_id",
    "partition_key",
    "payload",
    "headers",
    "created_at",
    "available_at",
    "attempts",
    "status",
)
_TYPED = {
    "event_id": Uuid(),
    "payload": JSONDocument,
    "headers": JSONDocument,
    "created_at": UTCDateTime(),
    "available_at": UTCDateTime(),
}
MAX_ROWS_PER_INSERT = 1000
"""Rows per INSERT statement (11 parameters each, well under both databases' limits)."""

# The writers' key locks (migration 0005 creates the function): a transaction-level
# advisory lock per distinct key, taken in one global order (by hash) so that two
# writers of overlapping key sets never deadlock. See ``lock_keys``.
_LOCK_KEYS = text("SELECT outbox_lock_keys(:keys)").bindparams(
    bindparam("keys", type_=ARRAY(String()))
)


def lock_keys(connection: Connection, keys: Sequence[str]) -> None:
    """Serialize this transaction with every other writer of ``keys`` until it ends.

    Why: ids come from a sequence at INSERT time, so without this two
    transactions writing one key at once could commit in the other order than
    their ids, and a relay could publish the higher id first. With it the second
    writer of a key waits for the first one's commit (or rollback) before it
    draws its ids, so the ids of one key are in the commit order of their
    writers, and a relay that reads the key in id order never passes over an
    uncommitted earlier event. Plain-SQL writers take the same locks with
    ``SELECT outbox_lock_keys(ARRAY['key', ...])`` before their INSERT.
    SQLite needs nothing: ``BEGIN IMMEDIATE`` already serializes writers.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(_LOCK_KEYS, {"keys": sorted(set(keys))})


@functools.lru_cache(maxsize=64)
def _multi_row_insert(rows: int) -> TextClause:
    """``INSERT ... VALUES (...), ... ON CONFLICT (event_id) DO NOTHING`` for ``rows`` rows.

    Text, built once per row count: SQLAlchemy 2.0 never caches the compiled
    form of a dialect ``insert().on_conflict_do_nothing()`` (sqlalchemy#10445),
    and compiling it took as long as running it.
    """
    values = ", ".join(
        "(" + ", ".join(f":{column}_{n}" for column in _COLUMNS) + ")" for n in range(rows)
    )
    sql = (
        f"INSERT INTO {OutboxRow.__tablename__} ({', '.join(_COLUMNS)}) "
        f"VALUES {values} ON CONFLICT (event_id) DO NOTHING"
    )
    typed = [
        bindparam(f"{column}_{n}", type_=kind)
        for n in range(rows)
        for column, kind in _TYPED.items()
    ]
    return text(sql).bindparams(*typed)


def emit(
    connection: Executor, events: Sequence[Event[Any]] | Event[Any], clock: Clock
) -> list[uuid.UUID]:
    """Write ``events`` in the caller's transaction, as ONE multi-row INSERT.

    An event whose ``event_id`` is already stored is skipped silently: the same
    fact announced twice is one event. Returns the ids of all ``events``.
    Nothing is committed here; the events become visible with the caller's commit.
    On PostgreSQL the transaction first takes the key lock of every key it
    writes (``lock_keys``) and holds it until it ends: the events of one key
    are then published in the commit order of their writers.
    """
    batch = [events] if isinstance(events, Event) else list(events)
    if not batch:
        return []
    for event in batch:
        if not isinstance(event, Event):
            raise InvalidInputError("emit takes Event instances", field="events", value=event)
    now = clock.now()
    rows = [
        (
            event.event_id,
            event.event_type,
            event.aggregate_type,
            event.aggregate_id,
            event.key,
            event.payload.model_dump(mode="json"),
            dict(event.headers),
            now,
            event.available_at or now,
            0,
            OutboxStatus.PENDING.value,
        )
        for event in batch
    ]
    conn = as_connection(connection)
    with translate_db_errors():
        lock_keys(conn, [event.key for event in batch])
        # On PostgreSQL the outbox's statement trigger NOTIFYs the relays at commit.
        for start in range(0, len(rows), MAX_ROWS_PER_INSERT):
            chunk = rows[start : start + MAX_ROWS_PER_INSERT]
            params = {
                f"{column}_{n}": value
                for n, row in enumerate(chunk)
                for column, value in zip(_COLUMNS, row, strict=True)
            }
            conn.execute(_multi_row_insert(len(chunk)), params)
    wakeup.mark_emitted(conn)
    return [event.event_id for event in batch]
