"""A ``MarketCalendar`` over the ``exchange_calendars`` package (``signal-mgmt[calendars]``).

``exchange_calendars`` keeps holiday lists for many exchanges up to date. It has no
NSE calendar; BSE's (``XBOM``) closes on the same days, minus the evening Muhurat
sessions, which it does not model. A day outside the calendar's bounds raises
``CalendarHorizonError``, as the shipped data does, instead of guessing.
"""

from __future__ import annotations

import warnings
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import exchange_calendars

from signal_mgmt.market.calendar import CalendarHorizonError, Session
from signal_mgmt.market.clock import require_aware

DEFAULT_CODE = "XBOM"
"""BSE: the exchange_calendars calendar that closes on NSE's trading holidays."""


class XcalsCalendar:
    """The sessions of an ``exchange_calendars`` calendar between ``start`` and ``end``."""

    def __init__(self, code: str = DEFAULT_CODE, *, start: date, end: date) -> None:
        with warnings.catch_warnings():
            # pandas >= 3.1 deprecates a call exchange_calendars makes while building;
            # not ours to fix, and a host running with warnings as errors must still start
            warnings.simplefilter("ignore", DeprecationWarning)
            self._calendar = exchange_calendars.get_calendar(
                code, start=start.isoformat(), end=end.isoformat()
            )
        self.name = code
        self.covers = (start, end)
        self._timezone = ZoneInfo(str(self._calendar.tz))

    @property
    def timezone(self) -> ZoneInfo:
        return self._timezone

    def trading_date(self, at: datetime) -> date:
        return require_aware(at, "at").astimezone(self._timezone).date()

    def session(self, day: date) -> Session | None:
        if not self.covers[0] <= day <= self.covers[1]:
            raise CalendarHorizonError(self.name, day, self.covers)
        label = day.isoformat()
        if not self._calendar.is_session(label):
            return None
        opens: datetime = self._calendar.session_open(label).to_pydatetime()
        closes: datetime = self._calendar.session_close(label).to_pydatetime()
        regular = closes - opens == self._regular_length(day)
        return Session(day, opens, closes, "regular" if regular else "special")

    def is_open(self, at: datetime) -> bool:
        session = self.session(self.trading_date(at))
        return session is not None and session.contains(at)

    def _regular_length(self, day: date) -> timedelta:
        opens: time = self._calendar.open_times[-1][1]
        closes: time = self._calendar.close_times[-1][1]
        return datetime.combine(day, closes) - datetime.combine(day, opens)
