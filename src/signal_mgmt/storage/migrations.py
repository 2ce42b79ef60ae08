"""Alembic, driven from Python: ``upgrade(engine)`` is what ``signal-mgmt migrate`` runs.

The history ships inside the package (``signal_mgmt._migrations``, mapped from the
repository's ``migrations/`` by setup.py) and keeps its own version table, so a host's
Alembic history in the same database is left alone.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from signal_mgmt.errors import ConfigError, translate_db_errors
from signal_mgmt.redaction import unparseable
from signal_mgmt.storage.db import check_schema_name, schema_of

VERSION_TABLE = "signal_mgmt_alembic_version"
"""Where the library records its revision; a host's ``alembic_version`` stays the host's."""
LEGACY_VERSION_TABLE = "alembic_version"
"""Where releases before 0.2 recorded it (see :func:`_adopt_legacy_version`)."""


def migrations_dir() -> Path:
    """The installed Alembic history (``env.py``, ``versions/``)."""
    try:
        root = resources.files("signal_mgmt._migrations")
    except ModuleNotFoundError:
        raise ConfigError(
            "signal_mgmt._migrations is not installed: reinstall signal-mgmt "
            "(an editable install made before 0.2 needs `pip install -e .` again)"
        ) from None
    if not isinstance(root, Path) or not (root / "env.py").is_file():
        raise ConfigError(
            f"migrations not found in {root} (signal_mgmt must be installed unzipped)"
        )
    return root


def alembic_config(output: io.StringIO | None = None) -> Config:
    config = Config(output_buffer=output)
    config.set_main_option("script_location", str(migrations_dir()))
    return config


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """Alembic's own errors (unknown revision, ...) as a ConfigError; database errors translated."""
    try:
        with translate_db_errors():
            yield
    except CommandError as error:
        raise ConfigError(f"migration: {str(error).splitlines()[0]}") from None


def _run(engine: Engine, action: str, revision: str) -> None:
    config = alembic_config()
    with _one_line_errors(), engine.begin() as connection:
        _prepare(connection, config)
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def _prepare(connection: Connection, config: Config) -> None:
    schema = schema_of(connection)
    exists = text("SELECT 1 FROM pg_namespace WHERE nspname = :schema")
    # checked first: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the
    # schema exists, and a DBA may have made it for a migrator without that right
    if schema is not None and connection.execute(exists, {"schema": schema}).first() is None:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    _adopt_legacy_version(connection, ScriptDirectory.from_config(config), schema)


def _adopt_legacy_version(
    connection: Connection, script: ScriptDirectory, schema: str | None
) -> None:
    """Move our revision out of Alembic's default table (where 0.1 kept it) into ours.

    A host's own revisions there are left untouched; the table is dropped only if it
    held nothing but ours.
    """
    legacy = MigrationContext.configure(connection)  # reads alembic_version, if it exists
    ours = {revision.revision for revision in script.walk_revisions()}
    found = next((head for head in legacy.get_current_heads() if head in ours), None)
    if found is None:
        return
    context = MigrationContext.configure(
        connection, opts={"version_table": VERSION_TABLE, "version_table_schema": schema}
    )
    if not context.get_current_heads():
        context.stamp(script, found)
    connection.execute(
        text(f"DELETE FROM {LEGACY_VERSION_TABLE} WHERE version_num = :rev"), {"rev": found}
    )
    if not legacy.get_current_heads():
        connection.execute(text(f"DROP TABLE {LEGACY_VERSION_TABLE}"))


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (default: the newest)."""
    _run(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Take the schema back to ``revision`` (``base``: drop every library table)."""
    _run(engine, "downgrade", revision)


def current(engine: Engine) -> list[str]:
    """The revision(s) the database is at; empty if the library was never migrated there."""
    with _one_line_errors(), engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"version_table": VERSION_TABLE, "version_table_schema": schema_of(connection)},
        )
        return list(context.get_current_heads())


def upgrade_sql(database_url: str, *, schema: str | None = None, revision: str = "head") -> str:
    """The DDL of an upgrade from nothing to ``revision``, for a DBA to review and run.

    Alembic's offline mode: no connection is made; the URL only names the dialect.
    """
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise ConfigError(f"not a database URL: {unparseable(database_url)!r}") from None
    if url.get_backend_name() != "postgresql":
        # SQLite's migrations rebuild tables (batch mode), which reflects a live database
        raise ConfigError("the upgrade DDL is for PostgreSQL: give a postgresql:// URL")
    if schema is not None:
        check_schema_name(schema)
    output = io.StringIO()
    config = alembic_config(output)
    config.attributes["offline_url"] = url
    config.attributes["schema"] = schema
    with _one_line_errors():
        command.upgrade(config, revision, sql=True)
    return output.getvalue()
