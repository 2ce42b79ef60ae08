"""The fan-out's writes: deliveries; on PostgreSQL the whole publish as one statement."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, String, TextClause, bindparam, func, literal, select
from sqlalchemy import text as sql_text
from sqlalchemy.dialects import postgresql

from signal_mgmt.models import ANY, Signal, SignalDelivery, Subscription, UTCDateTime
from signal_mgmt.storage.db import is_postgres
from signal_mgmt.storage.idempotent import insert_ignore

SIGNAL_KEY = [
    "symbol",
    "direction",
    "confluence_type",
    "signal_day",
    "effective_floor",
    "effective_ceiling",
]
NewDeliveries = list[tuple[int, int]]
"""(delivery id, user-broker id) of the deliveries a statement created."""


def insert_deliveries(
    conn: Connection, signal_id: int, symbol: str, audience: list[int], now: datetime
) -> NewDeliveries:
    """One statement for the whole audience; returns (delivery id, user-broker id) of new rows.

    On PostgreSQL the audience travels as ONE array parameter (``unnest``): the
    statement text stays short and cached, where a multi-row VALUES of thousands
    of rows is re-parsed by the driver on every call. SQLite gets executemany.
    """
    key = ["signal_id", "user_broker_id"]
    if is_postgres(conn):
        rows = select(
            literal(signal_id, BigInteger()),
            func.unnest(literal(audience, postgresql.ARRAY(BigInteger()))),
            literal(symbol, String()),
            literal(now, UTCDateTime()),
        )
        statement = postgresql.insert(SignalDelivery).from_select(
            ["signal_id", "user_broker_id", "symbol", "created_at"], rows
        )
        statement = statement.on_conflict_do_nothing(index_elements=key)
        params: list[dict[str, Any]] | None = None
    else:
        statement = insert_ignore(conn, SignalDelivery, key)
        params = [
            {"signal_id": signal_id, "user_broker_id": user, "symbol": symbol, "created_at": now}
            for user in audience
        ]
    returning = statement.returning(SignalDelivery.id, SignalDelivery.user_broker_id)
    return [(int(r[0]), int(r[1])) for r in conn.execute(returning, params)]


_SIGNAL_COLUMNS = (*SIGNAL_KEY, "status", "detected_at", "published_at", "metadata", "created_at")


def _publish_statement() -> TextClause:
    """Insert the signal, read its audience from ``subscriptions`` and insert its deliveries:
    one round trip. Text, built once: SQLAlchemy does not cache a compiled
    ``ON CONFLICT`` insert, and a data-modifying CTE gains nothing from the ORM.

    A duplicate signal inserts nothing, so its ``signal`` CTE is empty and so is the
    result; a new signal without audience gives one row with NULL delivery columns.
    The deliveries' foreign key sees the signal inserted by the same statement.
    """
    signals = Signal.__table__
    delivery_columns = "signal_id, user_broker_id, symbol, created_at"
    columns = ", ".join(_SIGNAL_COLUMNS)
    values = ", ".join(f":{name}" for name in _SIGNAL_COLUMNS)
    statement = sql_text(
        f"WITH signal AS ("
        f" INSERT INTO {Signal.__tablename__} ({columns}) VALUES ({values})"
        f" ON CONFLICT ({', '.join(SIGNAL_KEY)}) DO NOTHING RETURNING id"
        f"), audience AS ("
        f" SELECT DISTINCT user_broker_id FROM {Subscription.__tablename__}"
        f" WHERE symbol IN (:symbol, :any) AND confluence_type IN (:confluence_type, :any)"
        f"), delivered AS ("
        f" INSERT INTO {SignalDelivery.__tablename__} ({delivery_columns})"
        f" SELECT signal.id, audience.user_broker_id, :symbol, :created_at"
        f" FROM signal CROSS JOIN audience"
        f" ON CONFLICT (signal_id, user_broker_id) DO NOTHING"
        f" RETURNING id, user_broker_id"
        f") SELECT signal.id, delivered.id, delivered.user_broker_id"
        f" FROM signal LEFT JOIN delivered ON true"
    )
    typed = [bindparam(name, type_=signals.c[name].type) for name in _SIGNAL_COLUMNS]
    return statement.bindparams(*typed, bindparam("any", type_=String()))


_PUBLISH = _publish_statement()


def publish_in_one_statement(
    conn: Connection, signal: Mapping[str, Any]
) -> tuple[int, NewDeliveries] | None:
    """PostgreSQL, audience from the library's ``subscriptions``: the signal (already
    PUBLISHED) and its deliveries in one statement. None if the signal's key exists."""
    rows = conn.execute(_PUBLISH, {**signal, "any": ANY}).all()
    if not rows:
        return None
    new = [(int(delivery), int(user)) for _, delivery, user in rows if delivery is not None]
    return int(rows[0][0]), new
