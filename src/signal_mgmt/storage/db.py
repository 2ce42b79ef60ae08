"""Engines and the one rule of writing: the caller's transaction, or our own.

Every public write API takes ``connection=None``. Given a caller's
``Connection`` (or ORM ``Session``) we write inside that transaction and never
commit; otherwise we open a transaction, commit it, and close it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeGuard

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects.postgresql.base import RESERVED_WORDS
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session

from signal_mgmt.errors import ConfigError, translate_db_errors
from signal_mgmt.redaction import unparseable

Executor = Connection | Session
"""What a caller may hand us to write inside its own transaction."""

EngineOrUrl = Engine | str

MAX_IDENTIFIER = 63
"""PostgreSQL's identifier length in bytes (NAMEDATALEN - 1): a longer name is cut to it."""
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
"""A PostgreSQL schema we accept: an unquoted lowercase identifier (no quoting surprises)."""
UNUSABLE_SCHEMAS = frozenset(RESERVED_WORDS) | {"information_schema"}
"""Names that pass the pattern yet fail unquoted (reserved words) or are the catalog's own."""
_SCHEMA_INFO_KEY = "signal_mgmt_schema"

PG_CONNECT_DEFAULTS = {
    "connect_timeout": 5,  # seconds to connect (libpq waits forever for a silent server)
    "keepalives": 1,
    "keepalives_idle": 5,  # a connection waiting for a reply probes after 5 s of silence,
    "keepalives_interval": 2,  # every 2 s,
    "keepalives_count": 3,  # and is dead after 3 unanswered probes (~11 s)
    "tcp_user_timeout": 10_000,  # ms: data sent and unacknowledged this long: dead
}
"""libpq options ``make_engine`` sets unless the URL's query (or ``connect_args``) sets them:
without them a call on a connection whose server vanished from the network (no
refusal, no reset) waits for the kernel's defaults, two hours or more."""


def engine_from(target: EngineOrUrl, **kwargs: Any) -> Engine:
    """Return ``target`` if it is an Engine, otherwise build one from a URL."""
    if isinstance(target, Engine):
        return target
    return make_engine(target, **kwargs)


def make_engine(url: str, *, schema: str | None = None, **kwargs: Any) -> Engine:
    """An engine with the settings this library relies on.

    PostgreSQL URLs are routed to psycopg 3. SQLite gets WAL, a busy timeout and
    ``BEGIN IMMEDIATE`` so that a write transaction takes the write lock at its
    start: two writers then queue instead of failing a lock upgrade midway.
    ``schema`` (PostgreSQL only, setting ``SIGNAL_MGMT_SCHEMA``) becomes every
    connection's ``search_path``: the library's tables, indexes, triggers and
    functions live there, created by ``upgrade`` and used by every service.
    ``kwargs`` go to ``create_engine`` (e.g. ``pool_pre_ping=True``, ``pool_size``).
    psycopg connections get ``PG_CONNECT_DEFAULTS`` (connect timeout, TCP keepalives,
    ``tcp_user_timeout``): a server lost from the network fails a call within about
    11 s instead of hanging it; the URL's query overrides each (``?connect_timeout=2``).
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"not a database URL: {unparseable(url)!r}") from None
    backend = parsed.get_backend_name()
    if backend not in {"postgresql", "sqlite"}:
        raise ConfigError(f"unsupported database {backend!r}: use sqlite or postgresql")
    if schema is not None:
        check_schema_name(schema)
        if backend != "postgresql":
            raise ConfigError(f"schema {schema!r} needs PostgreSQL; SQLite has one namespace")
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend == "postgresql" and parsed.drivername == "postgresql+psycopg":
        chosen = {**parsed.query, **kwargs.get("connect_args", {})}
        defaults = {name: v for name, v in PG_CONNECT_DEFAULTS.items() if name not in chosen}
        kwargs["connect_args"] = {**defaults, **kwargs.get("connect_args", {})}
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError):  # e.g. postgresql+psycopg2 without psycopg2
        raise ConfigError(
            f"no driver for {parsed.drivername!r}: use sqlite or postgresql"
        ) from None
    if backend == "sqlite":
        _configure_sqlite(engine)
    if schema is not None:
        _use_schema(engine, schema)
    return engine


def is_schema_name(schema: object) -> TypeGuard[str]:
    return (
        isinstance(schema, str)
        and SCHEMA_NAME.fullmatch(schema) is not None
        and not schema.startswith("pg_")
        and schema not in UNUSABLE_SCHEMAS
    )


def check_schema_name(schema: object) -> str:
    if not is_schema_name(schema):
        raise ConfigError(
            f"bad schema name {schema!r}: lowercase letters, digits and _, at most 63, "
            "not starting with a digit or pg_, not an SQL reserved word or information_schema"
        )
    return schema


def _use_schema(engine: Engine, schema: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # Only this schema: a library table never resolves to, or lands in, a host's public.
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET search_path TO {schema}")
        cursor.close()
        dbapi_connection.commit()  # a later pool-reset ROLLBACK must not undo the SET
        record.info[_SCHEMA_INFO_KEY] = schema


def schema_of(connection: Connection) -> str | None:
    """The schema ``make_engine(schema=...)`` pinned this connection to, if any."""
    value = connection.info.get(_SCHEMA_INFO_KEY)
    return value if isinstance(value, str) else None


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
