"""The calendar's horizon, and the shipped NSE data against exchange_calendars (XBOM)."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources

import pytest
from sqlalchemy import Engine, func, select

from entry_world import make_world
from signal_mgmt.entry.qualification import EntryQualificationService
from signal_mgmt.market.calendar import CalendarHorizonError, ExchangeCalendar, nse_calendar
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.market.xcals import XcalsCalendar
from signal_mgmt.models import TradeIntent

NSE = nse_calendar()
COMPARED = (date(2025, 1, 1), date(2026, 12, 31))


def shipped_data() -> dict[str, object]:
    text = resources.files("signal_mgmt.market").joinpath("data/nse.json").read_text()
    data: dict[str, object] = json.loads(text)
    return data


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@pytest.mark.parametrize("day", [date(2027, 1, 4), date(2024, 12, 31)])
def test_a_day_outside_the_shipped_data_is_an_error_not_a_regular_session(day: date) -> None:
    with pytest.raises(
        CalendarHorizonError, match=re.escape("covers 2025-01-01..2026-12-31")
    ) as raised:
        NSE.session(day)
    assert raised.value.day == day
    with pytest.raises(CalendarHorizonError):
        NSE.is_open(NSE.at_local(day, time(10, 0)))
    with pytest.raises(CalendarHorizonError):
        NSE.next_trading_day(date(2026, 12, 31))


def test_a_host_extends_the_horizon_with_the_next_years_holidays() -> None:
    extended = NSE.with_holidays(
        {date(2027, 1, 26): "Republic Day"}, covers_through=date(2027, 12, 31)
    )
    assert extended.session(date(2027, 1, 26)) is None
    assert extended.session(date(2027, 1, 27)) is not None
    assert NSE.with_holidays({}).covers == NSE.covers  # no horizon given: unchanged


def test_a_calendar_without_a_horizon_trusts_its_data_for_any_day() -> None:
    plain = ExchangeCalendar.from_mapping(
        {"name": "X", "timezone": "UTC", "open": "09:00", "close": "17:00", "holidays": {}}
    )
    assert plain.covers is None
    assert plain.session(date(2030, 1, 2)) is not None


def test_entry_qualification_beyond_the_horizon_raises_and_writes_nothing(
    engine: Engine, clock: ManualClock
) -> None:
    world = make_world(engine, clock, users=1, tcs_only=False)
    clock.set(datetime(2027, 1, 4, 5, 0, tzinfo=UTC))
    qualification = EntryQualificationService(engine, clock, NSE)
    [delivery] = world.signals.publish(world.candidate("INFY")).delivery_ids
    with pytest.raises(CalendarHorizonError):
        qualification.qualify(delivery)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(TradeIntent)).scalar_one() == 0


def test_the_exchange_calendars_adapter_has_a_horizon_too() -> None:
    xbom = XcalsCalendar(start=COMPARED[0], end=COMPARED[1])
    with pytest.raises(CalendarHorizonError):
        xbom.session(date(2027, 1, 4))
    session = xbom.session(date(2026, 11, 25))
    assert session is not None
    assert session.open_at == NSE.at_local(date(2026, 11, 25), time(9, 15))
    assert xbom.is_open(NSE.at_local(date(2026, 11, 25), time(15, 29)))
    assert not xbom.is_open(NSE.at_local(date(2026, 11, 25), time(15, 30)))


def test_the_shipped_nse_data_matches_xbom_or_explains_each_difference() -> None:
    """Every day of 2025-2026 on which the sessions differ is explained in nse.json,
    and every explanation there is still a difference."""
    xbom = XcalsCalendar(start=COMPARED[0], end=COMPARED[1])
    differing = set()
    for day in days(*COMPARED):
        ours, theirs = NSE.session(day), xbom.session(day)
        bounds = [(s.open_at, s.close_at) if s is not None else None for s in (ours, theirs)]
        if bounds[0] != bounds[1]:
            differing.add(day.isoformat())
    compared = shipped_data()["compared_with"]
    assert isinstance(compared, dict)
    explained = set(compared["differences"])
    assert differing == explained
    assert NSE.covers == COMPARED
