"""Renko-style confirmation: a condition fires only after N bricks close beyond its level.

A tick that merely touches a stop or a target can be noise. With a
``BrickRule(size=B, count=N)`` the level must be beaten by N completed bricks
of size B: bricks are laid from the level outwards as the price moves B at a
time, and taken back when it moves B the other way. Configured per exit
reason; a reason without a rule (typically STOP_LOSS) fires on the first touch.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from signal_mgmt.errors import InvalidInputError
from signal_mgmt.exit.conditions import Crossing, Trigger


@dataclass(frozen=True, slots=True)
class BrickRule:
    size: Decimal
    count: int

    def __post_init__(self) -> None:
        if not isinstance(self.size, Decimal) or not self.size.is_finite() or self.size <= 0:
            raise InvalidInputError("brick size must be a positive Decimal", field="size")
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise InvalidInputError("brick count must be an int >= 1", field="count")

    def tracker(self, trigger: Trigger) -> BrickTracker:
        return BrickTracker(self, trigger)


class BrickTracker:
    """Bricks of one (trade, reason) since its level was crossed."""

    def __init__(self, rule: BrickRule, trigger: Trigger) -> None:
        self.rule = rule
        # Work in "beyond is up" space so that one loop serves both crossings.
        self._sign = 1 if trigger.crossing is Crossing.RISING else -1
        self._last_close = self._sign * trigger.level
        self.bricks = 0

    def update(self, price: Decimal) -> bool:
        """Feed one price; True when at least ``count`` bricks have closed beyond the level."""
        signed, size = self._sign * price, self.rule.size
        while signed >= self._last_close + size:
            self._last_close += size
            self.bricks += 1
        while self.bricks > 0 and signed <= self._last_close - size:
            self._last_close -= size
            self.bricks -= 1
        return self.confirmed

    @property
    def confirmed(self) -> bool:
        return self.bricks >= self.rule.count
