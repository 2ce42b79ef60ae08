"""Serialization points: entry work per symbol, exit-intent work per trade.

In process a keyed lock; across processes a PostgreSQL advisory lock held until
the transaction ends (SQLite's ``BEGIN IMMEDIATE`` already serializes writers)."""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, func, select

from signal_mgmt.storage.db import is_postgres

_EXIT_LOCK_SPACE = 0x45584954  # "EXIT": the two-int4 key space does not overlap entry's int8 one


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


def lock_trade(connection: Connection, trade_id: int) -> None:
    """Take the trade's exit lock for the rest of the transaction (PostgreSQL; SQLite's
    ``BEGIN IMMEDIATE`` already serializes writers). Correctness rests on the unique keys
    and guarded updates; the lock keeps one trade's facts read and written in one order.
    Two trades whose ids agree modulo 2**31 share a lock, which only serializes them."""
    if is_postgres(connection):
        key = trade_id % 2**31
        connection.execute(select(func.pg_advisory_xact_lock(_EXIT_LOCK_SPACE, key)))


class KeyedLocks:
    """One lock per key, created on demand and dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Hashable, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, key: Hashable) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)
