"""EXIT settings (environment prefix ``SIGNAL_MGMT_EXIT_``)."""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from signal_mgmt.exit.conditions import (
    ExitCondition,
    StopLoss,
    Target,
    TimeExit,
    TrailingStop,
)
from signal_mgmt.market.calendar import INTRADAY_SQUARE_OFF, MarketCalendar
from signal_mgmt.settings import build_settings


class ExitSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIGNAL_MGMT_EXIT_", extra="forbid", frozen=True)

    square_off_time: time | None = INTRADAY_SQUARE_OFF
    """Exchange-local time at which intraday trades are squared off (None: never)."""
    entry_cutoff: time | None = None
    """Exchange-local time from which no new intraday entry is taken (None: the square-off
    time); read by entry qualification through ``entry_cutoff_time``."""
    max_holding: timedelta | None = Field(default=None, gt=timedelta(0))
    trailing_distance: Decimal | None = Field(default=None, gt=0)
    cooldown: timedelta = Field(default=timedelta(minutes=1), ge=timedelta(0))
    """After an episode fires, how long before the same (trade, reason) may fire again
    without having cleared."""
    reemit_interval: timedelta = Field(default=timedelta(minutes=1), ge=timedelta(0))

    @field_validator("max_holding", "cooldown", "reemit_interval", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        """Durations from the environment may be plain seconds ("90") or ISO 8601 ("PT90S")."""
        if isinstance(value, str):
            try:
                return timedelta(seconds=float(value))
            except ValueError:
                return value
        return value

    @property
    def entry_cutoff_time(self) -> time | None:
        """The entry cut-off in force: ``entry_cutoff``, else the square-off time."""
        return self.entry_cutoff if self.entry_cutoff is not None else self.square_off_time

    def condition(self, calendar: MarketCalendar) -> ExitCondition:
        """Target | StopLoss [| TrailingStop] [| TimeExit], as configured."""
        condition: ExitCondition = Target() | StopLoss()
        if self.trailing_distance is not None:
            condition = condition | TrailingStop(self.trailing_distance)
        if self.square_off_time is not None or self.max_holding is not None:
            condition = condition | TimeExit(calendar, self.square_off_time, self.max_holding)
        return condition


def load_exit_settings(**overrides: object) -> ExitSettings:
    """Build EXIT settings; an invalid value becomes one ``ConfigError``."""
    return build_settings(ExitSettings, "exit setting", **overrides)
