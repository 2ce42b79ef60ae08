"""The MarketCalendar port and a data-driven exchange calendar (NSE shipped as data).

Nothing here hard-codes an exchange: NSE is one JSON file; a host loads another
file, or extends this one with holidays and special sessions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from importlib import resources
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from signal_mgmt.errors import ConfigError
from signal_mgmt.market.clock import require_aware

INTRADAY_SQUARE_OFF = time(15, 15)
"""Exchange-local time at which intraday trades are squared off by default (NSE)."""
SPECIAL_SESSION_LEAD = timedelta(minutes=15)
"""How long before its close a session that does not contain a daily time acts on it."""


class CalendarHorizonError(ConfigError):
    """A date outside the holiday data a calendar was loaded with: its session is unknown.

    Raised instead of guessing a regular session; the host loads newer data
    (``ExchangeCalendar.with_holidays(..., covers_through=...)``, ``from_file``) or
    uses the ``exchange_calendars`` adapter (``signal_mgmt.market.xcals``).
    """

    def __init__(self, calendar: str, day: date, covers: tuple[date, date]) -> None:
        first, last = covers
        super().__init__(
            f"{calendar} calendar data covers {first.isoformat()}..{last.isoformat()}; "
            f"{day.isoformat()} is outside it: load the exchange's holiday list for that year"
        )
        self.calendar = calendar
        self.day = day
        self.covers = covers


@dataclass(frozen=True, slots=True)
class Session:
    """One trading session, as aware UTC instants."""

    trading_date: date
    open_at: datetime
    close_at: datetime
    name: str = "regular"

    def contains(self, at: datetime) -> bool:
        return self.open_at <= at < self.close_at

    def daily_time(
        self, local: time, timezone: tzinfo, lead: timedelta = SPECIAL_SESSION_LEAD
    ) -> datetime:
        """``local`` on this session's day, as an instant; a session that does not contain
        it (a special session, e.g. Muhurat in the evening) gives ``lead`` before its close."""
        at = datetime.combine(self.trading_date, local, tzinfo=timezone)
        return at if self.open_at < at <= self.close_at else self.close_at - lead


class MarketCalendar(Protocol):
    @property
    def timezone(self) -> tzinfo:
        """The exchange's time zone (read-only, so frozen calendars fit)."""
        ...

    def trading_date(self, at: datetime) -> date:
        """The exchange-local calendar date of an instant."""
        ...

    def session(self, day: date) -> Session | None:
        """The session held on ``day``, or None when the market is closed all day."""
        ...

    def is_open(self, at: datetime) -> bool: ...


@dataclass(frozen=True, slots=True)
class ExchangeCalendar:
    """Regular weekday sessions, minus holidays, plus special sessions (e.g. Muhurat)."""

    name: str
    timezone: ZoneInfo
    open_time: time
    close_time: time
    weekend: frozenset[int] = frozenset({5, 6})
    holidays: dict[date, str] = field(default_factory=dict)
    special_sessions: dict[date, tuple[time, time, str]] = field(default_factory=dict)
    covers: tuple[date, date] | None = None
    """First and last day the holiday data is known for (None: trust it for any date)."""

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> ExchangeCalendar:
        try:
            zone = ZoneInfo(data["timezone"])
            specials = {
                date.fromisoformat(day): (
                    time.fromisoformat(spec["open"]),
                    time.fromisoformat(spec["close"]),
                    str(spec.get("name", "special")),
                )
                for day, spec in data.get("special_sessions", {}).items()
            }
            return cls(
                name=str(data["name"]),
                timezone=zone,
                open_time=time.fromisoformat(data["open"]),
                close_time=time.fromisoformat(data["close"]),
                weekend=frozenset(int(d) for d in data.get("weekend", [5, 6])),
                holidays={date.fromisoformat(d): str(n) for d, n in data["holidays"].items()},
                special_sessions=specials,
                covers=_covers(data.get("covers")),
            )
        except (KeyError, ValueError, TypeError, ZoneInfoNotFoundError) as error:
            raise ConfigError(f"invalid exchange calendar: {error!r}") from error

    @classmethod
    def from_file(cls, path: Path) -> ExchangeCalendar:
        try:
            return cls.from_mapping(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(f"cannot read exchange calendar {path}: {error}") from error

    def with_holidays(
        self, holidays: dict[date, str], *, covers_through: date | None = None
    ) -> ExchangeCalendar:
        """Add holidays; ``covers_through`` extends the data's horizon to that day."""
        covers = self.covers
        if covers is not None and covers_through is not None:
            covers = (covers[0], max(covers[1], covers_through))
        return replace(self, holidays={**self.holidays, **holidays}, covers=covers)

    def with_special_session(
        self, day: date, open_time: time, close_time: time, name: str = "special"
    ) -> ExchangeCalendar:
        specials = {**self.special_sessions, day: (open_time, close_time, name)}
        return replace(self, special_sessions=specials)

    def trading_date(self, at: datetime) -> date:
        return require_aware(at, "at").astimezone(self.timezone).date()

    def is_holiday(self, day: date) -> bool:
        self._require_covered(day)
        return day in self.holidays or day.weekday() in self.weekend

    def session(self, day: date) -> Session | None:
        """The day's session; ``CalendarHorizonError`` for a day the data does not cover."""
        self._require_covered(day)
        special = self.special_sessions.get(day)
        if special is not None:
            return self._session(day, special[0], special[1], special[2])
        if self.is_holiday(day):
            return None
        return self._session(day, self.open_time, self.close_time, "regular")

    def is_open(self, at: datetime) -> bool:
        session = self.session(self.trading_date(at))
        return session is not None and session.contains(at)

    def next_trading_day(self, day: date) -> date:
        candidate = day + timedelta(days=1)
        while self.session(candidate) is None:
            candidate += timedelta(days=1)
        return candidate

    def at_local(self, day: date, local: time) -> datetime:
        """An exchange-local wall time on ``day`` as an aware UTC instant."""
        return datetime.combine(day, local, tzinfo=self.timezone).astimezone(UTC)

    def _require_covered(self, day: date) -> None:
        if self.covers is not None and not self.covers[0] <= day <= self.covers[1]:
            raise CalendarHorizonError(self.name, day, self.covers)

    def _session(self, day: date, opens: time, closes: time, name: str) -> Session:
        return Session(day, self.at_local(day, opens), self.at_local(day, closes), name)


def _covers(spec: dict[str, str] | None) -> tuple[date, date] | None:
    if spec is None:
        return None
    first, last = date.fromisoformat(spec["from"]), date.fromisoformat(spec["through"])
    if first > last:
        raise ValueError(f"covers: {first} is after {last}")
    return first, last


def nse_calendar() -> ExchangeCalendar:
    """The NSE calendar shipped with the library (Asia/Kolkata, 09:15-15:30)."""
    text = resources.files("signal_mgmt.market").joinpath("data/nse.json").read_text()
    return ExchangeCalendar.from_mapping(json.loads(text))
