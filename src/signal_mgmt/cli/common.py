"""What every command shares: settings, engine, input parsing, and one-line errors."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import NoReturn

import typer
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from signal_mgmt.errors import (
    ConfigError,
    IllegalTransitionError,
    InvalidInputError,
    NotFoundError,
    SignalMgmtError,
)
from signal_mgmt.settings import Settings, load_settings
from signal_mgmt.validation import require_duration

USAGE_ERROR = 2
"""Exit code of bad input (URL, setting, duration, spec, event id); nothing was written."""
RUNTIME_ERROR = 1

_DURATION_PART = re.compile(r"(\d+)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

DATABASE_URL_HELP = "Database URL (default: $SIGNAL_MGMT_DATABASE_URL or ./signal_mgmt.db)"


def fail(message: str, code: int = USAGE_ERROR) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn the library's errors into one line on stderr: exit 2 for bad input, 1 otherwise."""
    try:
        yield
    except (ConfigError, InvalidInputError, NotFoundError, IllegalTransitionError) as error:
        fail(str(error), USAGE_ERROR)
    except SignalMgmtError as error:
        fail(str(error).splitlines()[0], RUNTIME_ERROR)


def settings_for(database_url: str | None, **overrides: object) -> Settings:
    given = {name: value for name, value in overrides.items() if value is not None}
    if database_url is not None:
        given["database_url"] = database_url
    return load_settings(**given)


def open_engine(settings: Settings, *, create: bool = False) -> Engine:
    """An engine on the configured database; an SQLite file must exist unless ``create``."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database or "")
        if not create and not path.exists():
            raise ConfigError(f"database {path} does not exist; run `signal-mgmt migrate` first")
        if not path.parent.is_dir():
            raise ConfigError(f"database folder {path.parent} does not exist")
    return settings.engine()


def parse_duration(text: str) -> timedelta:
    """``30s``, ``15m``, ``12h``, ``7d``, ``2w`` or a sum like ``1h30m``; positive."""
    cleaned = text.strip().lower()
    parts = _DURATION_PART.findall(cleaned)
    if not parts or "".join(n + unit for n, unit in parts) != cleaned:
        raise InvalidInputError(
            f"bad duration {text!r}: use e.g. 30m, 12h, 7d or 1h30m", field="duration", value=text
        )
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in parts)
    if seconds <= 0:
        raise InvalidInputError(f"duration {text!r} must be positive", field="duration", value=text)
    return require_duration(seconds, f"duration {text!r}")


def parse_event_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidInputError(
            f"bad event id {text!r}: expected a UUID", field="event_id", value=text
        ) from None
