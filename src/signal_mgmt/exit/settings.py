"""EXIT settings (environment prefix ``SIGNAL_MGMT_EXIT_``)."""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from signal_mgmt.exit.conditions import (
    ExitCondition,
    SessionCalendar,
    StopLoss,
    Target,
    TimeExit,
    TrailingStop,
)


class ExitSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIGNAL_MGMT_EXIT_", extra="forbid", frozen=True)

    square_off_time: time | None = time(15, 15)
    """Exchange-local time at which intraday trades are squared off (None: never)."""
    max_holding: timedelta | None = None
    trailing_distance: Decimal | None = Field(default=None, gt=0)
    cooldown: timedelta = timedelta(minutes=1)
    """After an episode fires, how long before the same (trade, reason) may fire again
    without having cleared."""
    reemit_interval: timedelta = timedelta(minutes=1)

    def condition(self, calendar: SessionCalendar) -> ExitCondition:
        """Target | StopLoss [| TrailingStop] [| TimeExit], as configured."""
        condition: ExitCondition = Target() | StopLoss()
        if self.trailing_distance is not None:
            condition = condition | TrailingStop(self.trailing_distance)
        if self.square_off_time is not None or self.max_holding is not None:
            condition = condition | TimeExit(calendar, self.square_off_time, self.max_holding)
        return condition
