"""Engines and the one rule of writing: the caller's transaction, or our own.

Every public write API takes ``connection=None``. Given a caller's
``Connection`` (or ORM ``Session``) we write inside that transaction and never
commit; otherwise we open a transaction, commit it, and close it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session

from signal_mgmt.errors import ConfigError, translate_db_errors

Executor = Connection | Session
"""What a caller may hand us to write inside its own transaction."""

EngineOrUrl = Engine | str


def engine_from(target: EngineOrUrl, **kwargs: Any) -> Engine:
    """Return ``target`` if it is an Engine, otherwise build one from a URL."""
    if isinstance(target, Engine):
        return target
    return make_engine(target, **kwargs)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the settings this library relies on.

    PostgreSQL URLs are routed to psycopg 3. SQLite gets WAL, a busy timeout and
    ``BEGIN IMMEDIATE`` so that a write transaction takes the write lock at its
    start: two writers then queue instead of failing a lock upgrade midway.
    ``kwargs`` go to ``create_engine`` (e.g. ``pool_pre_ping=True``, ``pool_size``).
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"not a database URL: {url!r}") from None
    backend = parsed.get_backend_name()
    if backend not in {"postgresql", "sqlite"}:
        raise ConfigError(f"unsupported database {backend!r}: use sqlite or postgresql")
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        engine = create_engine(parsed, **kwargs)
    except NoSuchModuleError:
        raise ConfigError(
            f"no driver for {parsed.drivername!r}: use sqlite or postgresql"
        ) from None
    if backend == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def is_postgres(bind: Connection | Engine) -> bool:
    return bind.dialect.name == "postgresql"


def as_connection(executor: Executor) -> Connection:
    return executor.connection() if isinstance(executor, Session) else executor


@contextmanager
def transaction(engine: Engine, connection: Executor | None = None) -> Iterator[Connection]:
    """Yield a connection in a transaction: the caller's if given, else a new committed one.

    Database errors leave as ``StorageError``; a caller's transaction is left for
    the caller to roll back.
    """
    with translate_db_errors():
        if connection is not None:
            yield as_connection(connection)
            return
        with engine.begin() as own:
            yield own
