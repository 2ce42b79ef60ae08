"""Writing events into the outbox, inside the caller's transaction."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, Connection, String, TextClause, Uuid, bindparam, text

from signal_mgmt.errors import InvalidInputError, TransientStorageError, translate_db_errors
from signal_mgmt.market.clock import Clock
from signal_mgmt.models import JSONDocument, OutboxRow, OutboxStatus, UTCDateTime
from signal_mgmt.outbox import wakeup
from signal_mgmt.outbox.events import Event, event_id_hex
from signal_mgmt.outbox.table import server_clock_unless_manual
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
DEADLOCK = "40P01"
MAX_KEYS_PER_EMIT = 1000
"""Distinct partition keys per ``emit``. On PostgreSQL each key is a lock held to commit in
the server's shared lock table (about max_locks_per_transaction x max_connections slots,
6,400 by default, for every session); far more keys fail with "out of shared memory"."""
MAX_ROWS_PER_INSERT = 1000
"""Rows per INSERT statement (11 parameters each, well under both databases' limits)."""


def _postgres_insert() -> TextClause:
    """The writers' key locks and every row in ONE statement, its text the same for any batch.

    The key locks: ``outbox_lock_keys`` (migration 0005) takes a transaction-level
    advisory lock per distinct key, in one global order (by hash) so that two
    writers of overlapping key sets never deadlock. Why: ids come from a sequence
    at INSERT time, so without them two transactions writing one key at once
    could commit in the other order than their ids, and a relay could publish the
    higher id first. With them the second writer of a key waits for the first
    one's commit (or rollback) before it draws its ids, so the ids of one key are
    in the commit order of their writers. The locks run in a CTE that ``WHERE
    EXISTS`` turns into a one-time filter, evaluated before the first row is
    produced, so before any row draws its id. Plain-SQL writers take the same
    locks with ``SELECT outbox_lock_keys(ARRAY['key', ...])`` before their INSERT.

    The rows travel as one JSON array (``jsonb_array_elements ... WITH ORDINALITY``,
    ids drawn in the order given): the text stays short, so the driver parses it
    once and the server keeps it prepared, where a multi-row VALUES is a new
    statement per batch size with 11 parameters a row.
    """
    columns = ", ".join(_COLUMNS)
    sql = (
        "WITH locked AS MATERIALIZED (SELECT outbox_lock_keys(:keys))"
        f" INSERT INTO {OutboxRow.__tablename__} ({columns})"
        " SELECT CAST(e.row->>'i' AS uuid), e.row->>'t', e.row->>'a', e.row->>'g', e.row->>'k',"
        " e.row->'p', e.row->'h', :now,"
        " coalesce(CAST(e.row->>'v' AS timestamptz), :due, statement_timestamp()),"
        " 0, :status"
        " FROM jsonb_array_elements(CAST(:rows AS jsonb)) WITH ORDINALITY AS e(row, n)"
        " WHERE EXISTS (SELECT FROM locked)"
        " ORDER BY e.n"
        " ON CONFLICT (event_id) DO NOTHING"
    )
    return text(sql).bindparams(
        bindparam("keys", type_=ARRAY(String())),
        bindparam("rows", type_=String()),
        bindparam("now", type_=UTCDateTime()),
        bindparam("due", type_=UTCDateTime()),
        bindparam("status", type_=String()),
    )


_POSTGRES_INSERT = _postgres_insert()


def _insert_postgres(
    conn: Connection, batch: Sequence[Event[Any]], ids: list[str], now: datetime, clock: Clock
) -> None:
    """``batch`` in one statement with its key locks, the rows as one JSON document
    (one ``json.dumps`` in C, where arrays per column cost the driver a dump per value)."""
    rows = [
        {
            "i": event_id,
            "t": event.event_type,
            "a": event.aggregate_type,
            "g": event.aggregate_id,
            "k": event.key,
            "p": event.payload.model_dump(mode="json"),
            "h": event.headers,
            "v": None if event.available_at is None else event.available_at.isoformat(),
        }
        for event, event_id in zip(batch, ids, strict=True)
    ]
    conn.execute(
        _POSTGRES_INSERT,
        {
            "keys": sorted({event.key for event in batch}),
            "rows": json.dumps(rows),
            "now": now,
            # an event due now is due by the server's clock: a writer's skew never holds it
            "due": server_clock_unless_manual(clock),
            "status": OutboxStatus.PENDING.value,
        },
    )


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


def _insert_rows(
    conn: Connection, batch: Sequence[Event[Any]], ids: list[uuid.UUID], now: datetime
) -> None:
    """SQLite: multi-row INSERTs of up to ``MAX_ROWS_PER_INSERT`` rows (``BEGIN IMMEDIATE``
    already serializes writers, so there are no key locks to take)."""
    rows = [
        (
            event_id,
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
        for event, event_id in zip(batch, ids, strict=True)
    ]
    for start in range(0, len(rows), MAX_ROWS_PER_INSERT):
        chunk = rows[start : start + MAX_ROWS_PER_INSERT]
        params = {
            f"{column}_{n}": value
            for n, row in enumerate(chunk)
            for column, value in zip(_COLUMNS, row, strict=True)
        }
        conn.execute(_multi_row_insert(len(chunk)), params)


def emit(
    connection: Executor, events: Sequence[Event[Any]] | Event[Any], clock: Clock
) -> list[uuid.UUID]:
    """Write ``events`` in the caller's transaction, as ONE INSERT (PostgreSQL; on SQLite
    one per ``MAX_ROWS_PER_INSERT`` rows).

    An event whose ``event_id`` is already stored is skipped silently: the same
    fact announced twice is one event. Returns the ids of all ``events``.
    Nothing is committed here; the events become visible with the caller's commit.
    On PostgreSQL the same statement first takes the key lock of every key it
    writes, held until the transaction ends: the events of one
    key are then published in the commit order of their writers. Two transactions
    that each call ``emit`` more than once can deadlock on those locks (one emits
    key A then B, the other B then A): emit once per transaction with all its
    events, or emit keys in one consistent order across calls.
    """
    batch = [events] if isinstance(events, Event) else list(events)
    if not batch:
        return []
    for event in batch:
        if not isinstance(event, Event):
            raise InvalidInputError("emit takes Event instances", field="events", value=event)
    if len({event.key for event in batch}) > MAX_KEYS_PER_EMIT:
        raise InvalidInputError(
            f"one emit takes at most {MAX_KEYS_PER_EMIT} distinct partition keys (each is a "
            "lock held to commit): split the events over several transactions",
            field="events",
        )
    now = clock.now()
    hex_ids = [event_id_hex(event.event_type, event.idempotency_key) for event in batch]
    ids = [uuid.UUID(hex_id) for hex_id in hex_ids]
    conn = as_connection(connection)
    try:
        with translate_db_errors():
            # On PostgreSQL the outbox's statement trigger NOTIFYs the relays at commit.
            if conn.dialect.name == "postgresql":
                _insert_postgres(conn, batch, hex_ids, now, clock)
            else:
                _insert_rows(conn, batch, ids, now)
    except TransientStorageError as error:
        if error.sqlstate != DEADLOCK:
            raise
        raise TransientStorageError(
            "deadlock on emit's key locks, which are held to commit: two transactions that "
            "emit the same keys in opposite orders over several emit() calls deadlock; emit "
            f"once per transaction with all its events, or in one consistent key order ({error})",
            sqlstate=error.sqlstate,
        ) from error
    wakeup.mark_emitted(conn)
    return ids
