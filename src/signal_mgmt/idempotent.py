"""Idempotent writes: the INSERT that lets the database refuse a duplicate quietly."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignore(connection: Connection, entity: Any, index_elements: list[str]) -> Any:
    """``INSERT ... ON CONFLICT (index_elements) DO NOTHING`` in the connection's dialect.

    Execute it with a list of dicts (executemany) and add ``.returning(...)`` to
    learn which rows were new: a row skipped for its unique key returns nothing.
    Both backends resolve concurrent inserts of one key to one row.
    """
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(entity).on_conflict_do_nothing(index_elements=index_elements)
