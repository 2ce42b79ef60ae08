"""Exit conditions: small, direction-aware policies composed with ``|`` (tenacity style).

A condition does not look at ticks itself. It tells the detector *where* it
fires (a price ``Trigger``: a level and the way the price must cross it) and
*when* it fires (a time ``deadline``), so that the detector can index trades by
level and touch only those whose trigger a tick crosses. ``met`` is the plain,
scan-everything evaluation of the same policy; tests hold the index to it.

Direction is handled once, in ``favourable`` / ``adverse``: a LONG target fires
on a rising price, a SHORT target on a falling one, and so on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum

from signal_mgmt.errors import InvalidInputError
from signal_mgmt.market.calendar import (
    INTRADAY_SQUARE_OFF,
    SPECIAL_SESSION_LEAD,
    MarketCalendar,
)
from signal_mgmt.models import Direction, ExitReason
from signal_mgmt.reference.types import to_tick


class Crossing(StrEnum):
    """Which way the price must move to reach a level."""

    RISING = "RISING"  # fires when price >= level
    FALLING = "FALLING"  # fires when price <= level


def favourable(direction: Direction) -> Crossing:
    """The price move that makes money for ``direction``."""
    return Crossing.RISING if direction is Direction.LONG else Crossing.FALLING


def adverse(direction: Direction) -> Crossing:
    return Crossing.FALLING if direction is Direction.LONG else Crossing.RISING


def is_beyond(price: Decimal, level: Decimal, crossing: Crossing) -> bool:
    return price >= level if crossing is Crossing.RISING else price <= level


@dataclass(frozen=True, slots=True)
class OpenTrade:
    """What exit detection needs to know about an open trade."""

    trade_id: int
    symbol: str
    direction: Direction
    entry_price: Decimal
    target_price: Decimal | None
    stop_price: Decimal | None
    opened_at: datetime
    tick_size: Decimal | None = None  # the instrument's; None: the entry is taken as given

    def entry_on_tick(self) -> Decimal:
        """The entry price on the tick: an average of fills at several prices may lie
        between ticks, and a price sent on (a manual exit before any tick) may not."""
        if self.tick_size is None:
            return self.entry_price
        return to_tick(self.entry_price, self.tick_size)


@dataclass(frozen=True, slots=True, order=True)
class Trigger:
    """A price level at which a condition fires."""

    level: Decimal
    crossing: Crossing
    reason: ExitReason

    def is_crossed_by(self, price: Decimal) -> bool:
        return is_beyond(price, self.level, self.crossing)


def advance_water_mark(direction: Direction, water_mark: Decimal, price: Decimal) -> Decimal:
    """The best price seen so far: highest for LONG, lowest for SHORT."""
    return max(water_mark, price) if direction is Direction.LONG else min(water_mark, price)


class ExitCondition:
    """One exit policy. Override ``triggers`` and/or ``deadline``; combine with ``|``."""

    uses_water_mark = False

    def triggers(self, trade: OpenTrade, water_mark: Decimal) -> tuple[Trigger, ...]:
        """Price levels at which this condition fires, given the trade's water mark."""
        return ()

    def deadline(self, trade: OpenTrade) -> datetime | None:
        """The instant from which this condition is met regardless of price."""
        return None

    def met(
        self, trade: OpenTrade, price: Decimal, at: datetime, water_mark: Decimal
    ) -> frozenset[ExitReason]:
        """Plain evaluation: every reason that holds for ``price`` at ``at``."""
        reasons = {t.reason for t in self.triggers(trade, water_mark) if t.is_crossed_by(price)}
        deadline = self.deadline(trade)
        if deadline is not None and at >= deadline:
            reasons.add(ExitReason.TIME)
        return frozenset(reasons)

    def __or__(self, other: ExitCondition) -> AnyOf:
        return AnyOf((self, other))


class AnyOf(ExitCondition):
    """Fires on any of its members; the earliest deadline wins."""

    def __init__(self, conditions: Iterable[ExitCondition]) -> None:
        flat: list[ExitCondition] = []
        for condition in conditions:
            flat.extend(condition.members if isinstance(condition, AnyOf) else (condition,))
        self.members: tuple[ExitCondition, ...] = tuple(flat)
        self.uses_water_mark = any(c.uses_water_mark for c in self.members)

    def triggers(self, trade: OpenTrade, water_mark: Decimal) -> tuple[Trigger, ...]:
        return tuple(t for c in self.members for t in c.triggers(trade, water_mark))

    def deadline(self, trade: OpenTrade) -> datetime | None:
        deadlines = [d for c in self.members if (d := c.deadline(trade)) is not None]
        return min(deadlines, default=None)


class Target(ExitCondition):
    """LONG: price >= target; SHORT: price <= target."""

    def triggers(self, trade: OpenTrade, water_mark: Decimal) -> tuple[Trigger, ...]:
        if trade.target_price is None:
            return ()
        return (Trigger(trade.target_price, favourable(trade.direction), ExitReason.TARGET),)


class StopLoss(ExitCondition):
    """LONG: price <= stop; SHORT: price >= stop."""

    def triggers(self, trade: OpenTrade, water_mark: Decimal) -> tuple[Trigger, ...]:
        if trade.stop_price is None:
            return ()
        return (Trigger(trade.stop_price, adverse(trade.direction), ExitReason.STOP_LOSS),)


class TrailingStop(ExitCondition):
    """Fires when the price gives back ``distance`` from the best price seen since entry.

    The best price (the water mark) is state: the detector keeps it and reports
    every improvement so the host can persist it (it must survive a restart).
    """

    uses_water_mark = True

    def __init__(self, distance: Decimal) -> None:
        if not isinstance(distance, Decimal) or not distance.is_finite() or distance <= 0:
            raise InvalidInputError(
                "trailing distance must be a positive Decimal", field="distance", value=distance
            )
        self.distance = distance

    def triggers(self, trade: OpenTrade, water_mark: Decimal) -> tuple[Trigger, ...]:
        gap = self.distance if trade.direction is Direction.LONG else -self.distance
        crossing = adverse(trade.direction)
        return (Trigger(water_mark - gap, crossing, ExitReason.TRAILING_STOP),)


class TimeExit(ExitCondition):
    """Square-off at a local wall time on the trade's trading day, and/or a maximum holding time.

    A trade opened in a session after its square-off time (an entry order that filled
    late) is squared off at once; one opened after the close squares off in the next
    session (per ``calendar``, so holidays are skipped). A session that does not
    contain the square-off time (a special session, e.g. Muhurat in the evening)
    squares off ``special_session_lead`` before its close instead.
    """

    def __init__(
        self,
        calendar: MarketCalendar,
        square_off: time | None = INTRADAY_SQUARE_OFF,
        max_holding: timedelta | None = None,
        special_session_lead: timedelta = SPECIAL_SESSION_LEAD,
    ) -> None:
        if max_holding is not None and max_holding <= timedelta(0):
            raise InvalidInputError(
                "max_holding must be positive", field="max_holding", value=max_holding
            )
        if special_session_lead < timedelta(0):
            raise InvalidInputError(
                "special_session_lead must be >= 0", field="special_session_lead"
            )
        self.calendar = calendar
        self.square_off = square_off
        self.max_holding = max_holding
        self.special_session_lead = special_session_lead

    def deadline(self, trade: OpenTrade) -> datetime | None:
        deadlines: list[datetime] = []
        if self.square_off is not None:
            deadlines.append(self._square_off_after(trade.opened_at, self.square_off))
        if self.max_holding is not None:
            deadlines.append(trade.opened_at + self.max_holding)
        return min(deadlines, default=None)

    def _square_off_after(self, opened_at: datetime, square_off: time) -> datetime:
        day = self.calendar.trading_date(opened_at)
        for _ in range(366):  # a year without a session is a broken calendar, not a loop
            session = self.calendar.session(day)
            if session is not None:
                at = session.daily_time(
                    square_off, self.calendar.timezone, self.special_session_lead
                )
                if at > opened_at:
                    return at
                if session.contains(opened_at):
                    return opened_at  # filled after the square-off: out at once, not overnight
            day = day + timedelta(days=1)
        raise InvalidInputError("calendar has no session within a year", field="calendar")
