"""A simple opening-range-breakout detector: the demo's source of signal candidates.

Pure: it sees ticks and returns breakouts; no clock, no database. The opening
range is the high and low of each symbol's first minutes; the first tick
above the high is a LONG breakout, the first below the low a SHORT one, each
at most once per symbol and day, and none after the cut-off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from signal_mgmt.demo.ticks import Tick
from signal_mgmt.errors import InvalidInputError
from signal_mgmt.market.calendar import Session

Direction = Literal["LONG", "SHORT"]


@dataclass(frozen=True, slots=True)
class Breakout:
    """A candidate signal: the fields a ``SignalCandidate`` needs, plus the breakout price."""

    symbol: str
    direction: Direction
    confluence_type: str
    detected_at: datetime
    effective_floor: Decimal
    effective_ceiling: Decimal
    price: Decimal


@dataclass(slots=True)
class _Range:
    low: Decimal
    high: Decimal


class OpeningRangeBreakout:
    """Feeds on one session's ticks; returns a ``Breakout`` when a range is broken."""

    def __init__(
        self,
        session: Session,
        range_length: timedelta = timedelta(minutes=15),
        cutoff: timedelta = timedelta(hours=5),
    ) -> None:
        if not timedelta(0) < range_length < cutoff:
            raise InvalidInputError(
                "need 0 < range_length < cutoff", field="range_length", value=range_length
            )
        self._session = session
        self._range_ends = session.open_at + range_length
        self._cutoff = session.open_at + cutoff
        self.confluence_type = f"ORB{int(range_length.total_seconds() // 60)}"
        self._ranges: dict[str, _Range] = {}
        self._fired: set[tuple[str, Direction]] = set()

    def on_tick(self, tick: Tick) -> Breakout | None:
        if not self._session.contains(tick.at):
            return None
        if tick.at < self._range_ends:
            self._widen(tick)
            return None
        opening = self._ranges.get(tick.symbol)
        if opening is None or tick.at >= self._cutoff:
            return None
        direction: Direction | None = None
        if tick.price > opening.high:
            direction = "LONG"
        elif tick.price < opening.low:
            direction = "SHORT"
        if direction is None or (tick.symbol, direction) in self._fired:
            return None
        self._fired.add((tick.symbol, direction))
        return Breakout(
            symbol=tick.symbol,
            direction=direction,
            confluence_type=self.confluence_type,
            detected_at=tick.at,
            effective_floor=opening.low,
            effective_ceiling=opening.high,
            price=tick.price,
        )

    def _widen(self, tick: Tick) -> None:
        current = self._ranges.get(tick.symbol)
        if current is None:
            self._ranges[tick.symbol] = _Range(tick.price, tick.price)
        else:
            current.low = min(current.low, tick.price)
            current.high = max(current.high, tick.price)
