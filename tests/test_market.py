from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signal_mgmt.errors import ConfigError, InvalidInputError
from signal_mgmt.market import ExchangeCalendar, ManualClock, nse_calendar, require_aware

NSE = nse_calendar()


def test_nse_regular_session_is_0915_to_1530_ist() -> None:
    session = NSE.session(date(2026, 11, 25))
    assert session is not None
    assert session.open_at == datetime(2026, 11, 25, 3, 45, tzinfo=UTC)
    assert session.close_at == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert NSE.is_open(datetime(2026, 11, 25, 3, 45, tzinfo=UTC))
    assert not NSE.is_open(datetime(2026, 11, 25, 10, 0, tzinfo=UTC))


def test_weekends_and_holidays_are_closed() -> None:
    assert NSE.session(date(2026, 11, 28)) is None  # Saturday
    assert NSE.session(date(2026, 11, 24)) is None  # Guru Nanak Jayanti
    assert NSE.next_trading_day(date(2026, 11, 23)) == date(2026, 11, 25)


def test_special_session_opens_a_closed_day() -> None:
    muhurat = NSE.session(date(2026, 11, 8))  # a Sunday
    assert muhurat is not None
    assert muhurat.name == "Muhurat trading"


def test_host_extends_the_calendar() -> None:
    extended = NSE.with_holidays({date(2026, 11, 25): "exchange outage"})
    assert extended.session(date(2026, 11, 25)) is None
    assert NSE.session(date(2026, 11, 25)) is not None
    special = NSE.with_special_session(date(2026, 11, 28), time(10, 0), time(11, 0), "drill")
    assert special.is_open(datetime(2026, 11, 28, 4, 45, tzinfo=UTC))


def test_trading_date_is_exchange_local() -> None:
    # 20:00 UTC on the 25th is 01:30 on the 26th in Asia/Kolkata
    assert NSE.trading_date(datetime(2026, 11, 25, 20, 0, tzinfo=UTC)) == date(2026, 11, 26)


def test_bad_calendar_data_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        ExchangeCalendar.from_mapping({"name": "X", "timezone": "Mars/Olympus"})


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 11, 25, 9, 15)  # noqa: DTZ001
    with pytest.raises(InvalidInputError):
        require_aware(naive, "at")
    with pytest.raises(InvalidInputError):
        NSE.trading_date(naive)
    with pytest.raises(InvalidInputError):
        ManualClock(naive)


@given(st.integers(min_value=0, max_value=10**9))
def test_manual_clock_moves_only_when_told(seconds: int) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = ManualClock(start)
    assert clock.now() == start
    assert clock.advance(timedelta(seconds=seconds)) == start + timedelta(seconds=seconds)
    assert clock.now().tzinfo is UTC
