"""EXIT settings from the environment; bad values are one ConfigError."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest

from signal_mgmt.errors import ConfigError
from signal_mgmt.exit.conditions import OpenTrade
from signal_mgmt.exit.settings import load_exit_settings
from signal_mgmt.market import nse_calendar
from signal_mgmt.models import Direction, ExitReason


def test_environment_durations_in_seconds_or_iso(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNAL_MGMT_EXIT_COOLDOWN", "90")
    monkeypatch.setenv("SIGNAL_MGMT_EXIT_MAX_HOLDING", "PT2H")
    monkeypatch.setenv("SIGNAL_MGMT_EXIT_SQUARE_OFF_TIME", "15:10")
    monkeypatch.setenv("SIGNAL_MGMT_EXIT_TRAILING_DISTANCE", "2.5")
    settings = load_exit_settings()
    assert settings.cooldown == timedelta(seconds=90)
    assert settings.max_holding == timedelta(hours=2)
    assert settings.square_off_time == time(15, 10)
    assert settings.trailing_distance == Decimal("2.5")


def test_the_configured_condition_combines_what_is_set() -> None:
    settings = load_exit_settings(trailing_distance=Decimal("1"), square_off_time=None)
    condition = settings.condition(nse_calendar())
    opened = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
    trade = OpenTrade(1, "X", Direction.LONG, Decimal(100), Decimal(110), Decimal(95), opened)
    assert condition.deadline(trade) is None
    met = condition.met(trade, Decimal("94"), opened, Decimal("100"))
    assert met == {ExitReason.STOP_LOSS, ExitReason.TRAILING_STOP}


@pytest.mark.parametrize(
    "bad",
    [
        {"cooldown": "-5"},
        {"max_holding": "0"},
        {"trailing_distance": "0"},
        {"square_off_time": "25:00"},
        {"unknown": 1},
    ],
)
def test_bad_settings_are_a_config_error(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        load_exit_settings(**bad)


def test_an_entry_cutoff_after_the_square_off_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An entry taken after the square-off would be carried overnight (its TIME exit is
    tomorrow's): the setting is refused, from a keyword or from the environment."""
    with pytest.raises(ConfigError, match="entry_cutoff"):
        load_exit_settings(entry_cutoff=time(15, 25))
    monkeypatch.setenv("SIGNAL_MGMT_EXIT_SQUARE_OFF_TIME", "15:00")
    monkeypatch.setenv("SIGNAL_MGMT_EXIT_ENTRY_CUTOFF", "15:05")
    with pytest.raises(ConfigError, match="entry_cutoff"):
        load_exit_settings()
    assert load_exit_settings(entry_cutoff=time(15, 0)).entry_cutoff_time == time(15, 0)
