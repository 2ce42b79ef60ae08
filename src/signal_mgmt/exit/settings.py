"""EXIT settings (environment prefix ``SIGNAL_MGMT_EXIT_``)."""

from __future__ import annotations

from datetime import time, timedelta

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from signal_mgmt.errors import ConfigError
from signal_mgmt.exit.conditions import (
    ExitCondition,
    StopLoss,
    Target,
    TimeExit,
    TrailingStop,
)
from signal_mgmt.market.calendar import INTRADAY_SQUARE_OFF, MarketCalendar
from signal_mgmt.settings import LibrarySettings
from signal_mgmt.validation import MAX_DURATION, Price, require_duration


class ExitSettings(LibrarySettings):
    """Invalid values (from the environment or keywords) raise one ``ConfigError``."""

    label = "exit setting"
    model_config = SettingsConfigDict(env_prefix="SIGNAL_MGMT_EXIT_", extra="forbid", frozen=True)

    square_off_time: time | None = INTRADAY_SQUARE_OFF
    """Exchange-local time at which intraday trades are squared off (None: never)."""
    entry_cutoff: time | None = None
    """Exchange-local time from which no new intraday entry is taken (None: the square-off
    time); read by entry qualification through ``entry_cutoff_time``."""
    entry_ttl: timedelta | None = Field(default=None, gt=timedelta(0), le=MAX_DURATION)
    """How long after its approval an entry may be sent or rest at the broker; then the
    rest is cancelled and the trade opens for what filled (None: until the cut-off)."""
    max_holding: timedelta | None = Field(default=None, gt=timedelta(0), le=MAX_DURATION)
    trailing_distance: Price | None = None
    cooldown: timedelta = Field(default=timedelta(minutes=1), ge=timedelta(0), le=MAX_DURATION)
    """After an episode fires, how long before the same (trade, reason) may fire again
    without having cleared."""
    reemit_interval: timedelta = Field(
        default=timedelta(minutes=1), ge=timedelta(0), le=MAX_DURATION
    )
    max_clock_skew: timedelta = Field(
        default=timedelta(seconds=5), ge=timedelta(0), le=MAX_DURATION
    )
    """How far ahead of the service clock a tick, candidate or clear may be stamped; a
    later one is refused (it would fire or re-arm an episode hours ahead of time)."""

    @field_validator(
        "entry_ttl", "max_holding", "cooldown", "reemit_interval", "max_clock_skew", mode="before"
    )
    @classmethod
    def _seconds(cls, value: object) -> object:
        """Durations may be plain seconds (90, "90") or ISO 8601 ("PT90S"); inf, NaN and
        more than ``MAX_DURATION`` are refused before ``timedelta`` could overflow."""
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return require_duration(value, "duration")
        return value

    @model_validator(mode="after")
    def _cutoff_not_after_square_off(self) -> ExitSettings:
        """An entry taken after the square-off would be carried overnight."""
        square_off, cutoff = self.square_off_time, self.entry_cutoff
        if square_off is not None and cutoff is not None and cutoff > square_off:
            raise ConfigError(
                f"invalid exit setting entry_cutoff: {cutoff} is after the square-off {square_off}"
            )
        return self

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
    return ExitSettings(**overrides)  # type: ignore[arg-type]
