"""The exception tree. Every error the library raises is a ``SignalMgmtError``.

Database errors are translated at one choke point, :func:`translate_db_errors`,
so callers never see a driver exception and always get structured fields.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import exc as sa_exc


class SignalMgmtError(Exception):
    """Root of every error raised by signal_mgmt."""


class ConfigError(SignalMgmtError):
    """A setting, URL or CLI option is invalid."""


class InvalidInputError(SignalMgmtError, ValueError):
    """Input at a public boundary is invalid; nothing was written."""

    def __init__(self, message: str, *, field: str | None = None, value: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class NotFoundError(SignalMgmtError, LookupError):
    """A referenced row does not exist."""

    def __init__(self, entity: str, key: object) -> None:
        super().__init__(f"{entity} not found: {key!r}")
        self.entity = entity
        self.key = key


class IllegalTransitionError(SignalMgmtError):
    """A state transition was attempted from a state that does not allow it."""

    def __init__(
        self, entity: str, entity_id: object, *, expected: str, target: str, actual: str | None
    ) -> None:
        super().__init__(
            f"{entity} {entity_id!r}: cannot move to {target} "
            f"(expected {expected}, found {actual or 'nothing'})"
        )
        self.entity = entity
        self.entity_id = entity_id
        self.expected = expected
        self.target = target
        self.actual = actual


class StorageError(SignalMgmtError):
    """The database refused or failed an operation."""

    def __init__(
        self, message: str, *, constraint_name: str | None = None, sqlstate: str | None = None
    ) -> None:
        super().__init__(message)
        self.constraint_name = constraint_name
        self.sqlstate = sqlstate


class IntegrityViolation(StorageError):
    """A constraint (unique, foreign key, check) rejected a write."""


class TransientStorageError(StorageError):
    """A retryable database failure: serialization failure, deadlock, lost connection, busy."""


class PublishError(SignalMgmtError):
    """A publisher could not deliver; ``transient`` says whether a retry may succeed."""

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/:@\s]*:)[^@\s]+@", re.IGNORECASE)
_PASSWORD_OPTION = re.compile(r"(?P<head>\bpassword\s*[=:]\s*['\"]?)[^\s'\",&;]+", re.IGNORECASE)


def redact_credentials(text: str) -> str:
    """``text`` with the passwords of URLs (``amqp://user:***@host``) and of
    ``password=...`` options masked: what a log line or ``last_error`` may show."""
    masked = _URL_PASSWORD.sub(r"\g<head>***@", text)
    return _PASSWORD_OPTION.sub(r"\g<head>***", masked)


def describe(error: BaseException) -> str:
    """``Class: message`` of ``error`` and of what caused it, credentials masked."""
    parts = [f"{type(error).__name__}: {error}"]
    cause = error.__cause__
    if cause is not None and str(cause) not in str(error):
        parts.append(f"caused by {type(cause).__name__}: {cause}")
    return redact_credentials("; ".join(parts))


_TRANSIENT_SQLSTATES = {
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "55P03",  # lock_not_available
    "57P01",  # admin_shutdown: the server is stopping or restarting
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now: the server is starting up or shutting down
}
_PERMANENT_SQLSTATES = {
    # out of (shared) memory: in practice a transaction holding more locks than the
    # server's lock table has slots; retrying the same transaction needs them again.
    "53200",
}
_TRANSIENT_SQLSTATE_CLASSES = (
    "08",  # connection exception
    "53",  # insufficient resources: too many connections, disk full
)
_SQLITE_CONSTRAINT = re.compile(r"constraint failed: (?P<cols>.+)$")


def _sqlite_constraint_name(message: str) -> str | None:
    match = _SQLITE_CONSTRAINT.search(message)
    return match.group("cols").strip() if match else None


def translate(error: sa_exc.DBAPIError) -> StorageError:
    """Map a SQLAlchemy/driver error to the library's tree, keeping structured fields."""
    orig = error.orig
    diag = getattr(orig, "diag", None)
    sqlstate: str | None = getattr(orig, "sqlstate", None)
    constraint = getattr(diag, "constraint_name", None) if diag is not None else None
    message = str(orig) if orig is not None else str(error)
    if constraint is None and isinstance(error, sa_exc.IntegrityError):
        constraint = _sqlite_constraint_name(message)
    if isinstance(error, sa_exc.IntegrityError):
        return IntegrityViolation(message, constraint_name=constraint, sqlstate=sqlstate)
    if _is_transient(error, sqlstate, message):
        return TransientStorageError(message, constraint_name=constraint, sqlstate=sqlstate)
    return StorageError(message, constraint_name=constraint, sqlstate=sqlstate)


def _is_transient(error: sa_exc.DBAPIError, sqlstate: str | None, message: str) -> bool:
    if "database is locked" in message or "database table is locked" in message:
        return True  # SQLite busy
    if sqlstate is not None:
        if sqlstate in _PERMANENT_SQLSTATES:
            return False
        return sqlstate in _TRANSIENT_SQLSTATES or sqlstate.startswith(_TRANSIENT_SQLSTATE_CLASSES)
    # psycopg reports a failure on the client side of the wire (connection refused,
    # server closed the connection) as an OperationalError with no sqlstate;
    # sqlite3's errors have no sqlstate attribute at all.
    client_side = hasattr(error.orig, "sqlstate") and isinstance(error, sa_exc.OperationalError)
    return client_side or error.connection_invalidated


@contextmanager
def translate_db_errors() -> Iterator[None]:
    """Re-raise any database error inside the block as a ``StorageError``."""
    try:
        yield
    except sa_exc.DBAPIError as error:
        raise translate(error) from error
    except sa_exc.StatementError as error:
        if isinstance(error.orig, SignalMgmtError):  # raised by a column type's bind check
            raise error.orig from None
        raise
    except sa_exc.TimeoutError as error:  # the pool had no free connection within pool_timeout
        raise TransientStorageError(f"no free database connection: {error}") from error
