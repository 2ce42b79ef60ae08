"""Alembic environment: one history for SQLite and PostgreSQL.

Run by ``signal_mgmt.storage.migrations`` (``signal-mgmt migrate``), which hands over a
connection (online) or a URL naming the dialect (``--sql``, offline). The ``alembic``
command line with alembic.ini works too, for writing new revisions.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from signal_mgmt.models import Base
from signal_mgmt.settings import load_settings
from signal_mgmt.storage.db import make_engine, schema_of
from signal_mgmt.storage.migrations import VERSION_TABLE

config = context.config


def _options(dialect_name: str, schema: str | None) -> dict[str, Any]:
    return {
        "target_metadata": Base.metadata,
        "version_table": VERSION_TABLE,
        "version_table_schema": schema,
        "render_as_batch": dialect_name == "sqlite",
        "compare_type": True,
    }


def run_migrations_offline() -> None:
    if "offline_url" in config.attributes:  # signal_mgmt.storage.migrations.upgrade_sql
        url, schema = config.attributes["offline_url"], config.attributes.get("schema")
    else:  # `alembic upgrade head --sql` with alembic.ini
        settings = load_settings()
        url = make_url(config.get_main_option("sqlalchemy.url") or settings.database_url)
        schema = settings.database_schema
    context.configure(url=url, literal_binds=True, **_options(url.get_backend_name(), schema))
    with context.begin_transaction():
        if schema is not None:  # what make_engine(schema=...) does per connection, online
            context.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            context.execute(f"SET search_path TO {schema}")
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection, **_options(connection.dialect.name, schema_of(connection))
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    settings = load_settings()
    url = config.get_main_option("sqlalchemy.url") or settings.database_url
    engine = make_engine(url, schema=settings.database_schema)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
