"""Idempotent writes: the INSERTs that let the database settle a duplicate key."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite


def _insert(connection: Connection, entity: Any) -> Any:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(entity)


def insert_ignore(connection: Connection, entity: Any, index_elements: list[str]) -> Any:
    """``INSERT ... ON CONFLICT (index_elements) DO NOTHING`` in the connection's dialect.

    Execute it with a list of dicts (executemany) and add ``.returning(...)`` to
    learn which rows were new: a row skipped for its unique key returns nothing.
    Both backends resolve concurrent inserts of one key to one row.
    """
    return _insert(connection, entity).on_conflict_do_nothing(index_elements=index_elements)


def upsert(
    connection: Connection, entity: Any, index_elements: list[str], columns: Iterable[str]
) -> Any:
    """``INSERT ... ON CONFLICT (index_elements) DO UPDATE`` of ``columns`` (reference data)."""
    statement = _insert(connection, entity)
    changed = {name: statement.excluded[name] for name in columns if name not in index_elements}
    return statement.on_conflict_do_update(index_elements=index_elements, set_=changed)
