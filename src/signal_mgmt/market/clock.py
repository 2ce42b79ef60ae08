"""The Clock port: every "now" in the library comes from here."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

from signal_mgmt.errors import InvalidInputError


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to; for tests and replays of a past day."""

    def __init__(self, start: datetime) -> None:
        self._now = require_aware(start, "start").astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = require_aware(when, "when").astimezone(UTC)

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now


def require_aware(value: datetime, field: str) -> datetime:
    """Reject naive datetimes at the boundary: a naive time has no place in a trading record."""
    if not isinstance(value, datetime):
        raise InvalidInputError(f"{field} must be a datetime", field=field, value=value)
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise InvalidInputError(f"{field} must be timezone-aware", field=field, value=value)
    return value
