"""Routing: the events' ordering keys (per symbol, per trade) and the per-symbol lock."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from signal_mgmt.db import is_postgres


def symbol_key(symbol: str) -> str:
    """Partition key of every entry event: one symbol's events publish in commit order."""
    return f"symbol:{symbol}"


def trade_key(trade_id: int) -> str:
    """Partition key of every trade and exit event: one trade's story publishes in commit order."""
    return f"trade:{trade_id}"


def lock_symbol(connection: Connection, symbol: str) -> None:
    """Hold a transaction-scoped PostgreSQL advisory lock on ``symbol``.

    Entry work for one symbol then runs one transaction at a time across every
    process, released by commit or rollback. SQLite needs nothing: its writers
    are already serialized by ``BEGIN IMMEDIATE``. Correctness does not depend on
    this lock (unique keys do that); it keeps a symbol's facts read and written
    in one order, e.g. two signals of one symbol qualified for one user-broker.
    ``hashtext`` may collide for two symbols; that only serializes them together.
    """
    if is_postgres(connection):
        connection.execute(select(func.pg_advisory_xact_lock(func.hashtext(symbol))))
