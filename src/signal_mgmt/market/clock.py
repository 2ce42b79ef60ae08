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
        if not isinstance(delta, timedelta):
            raise InvalidInputError("delta must be a timedelta", field="delta", value=delta)
        with self._lock:
            try:
                moved = self._now + delta
            except OverflowError:
                moved = datetime.max.replace(tzinfo=UTC)  # refused below, as out of range
            self._now = require_aware(moved, "advanced clock")
            return self._now


EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
"""The storable range [EARLIEST, LATEST): far enough from ``datetime.min``/``max`` that
converting to any zone or adding any allowed duration (``validation.MAX_DURATION``)
cannot overflow, and wide enough for any trading record."""


def require_aware(value: datetime, field: str) -> datetime:
    """The datetime choke point: a timezone-aware datetime inside the storable range.

    A naive time has no place in a trading record; one near ``datetime.max`` would
    overflow on its way to UTC or to the exchange's zone.
    """
    if not isinstance(value, datetime):
        raise InvalidInputError(f"{field} must be a datetime", field=field, value=value)
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise InvalidInputError(f"{field} must be timezone-aware", field=field, value=value)
    if not EARLIEST <= value < LATEST:
        raise InvalidInputError(
            f"{field} must lie in [{EARLIEST:%Y-%m-%d}, {LATEST:%Y-%m-%d}) UTC",
            field=field,
            value=value,
        )
    return value
