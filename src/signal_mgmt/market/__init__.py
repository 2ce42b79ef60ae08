"""Time and exchange sessions: the Clock and MarketCalendar ports."""

from signal_mgmt.market.calendar import (
    CalendarHorizonError,
    ExchangeCalendar,
    MarketCalendar,
    Session,
    nse_calendar,
)
from signal_mgmt.market.clock import Clock, ManualClock, SystemClock, require_aware

__all__ = [
    "CalendarHorizonError",
    "Clock",
    "ExchangeCalendar",
    "ManualClock",
    "MarketCalendar",
    "Session",
    "SystemClock",
    "nse_calendar",
    "require_aware",
]
