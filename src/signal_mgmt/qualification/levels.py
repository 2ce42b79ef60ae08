"""Entry, target and stop from a signal's zone: direction-aware, on the tick.

LONG enters at the ceiling with the stop at the floor; SHORT enters at the floor
with the stop at the ceiling. The target lies ``reward_risk_ratio`` times the
risk beyond the entry, rounded toward the entry so it never promises more.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from signal_mgmt.models import Direction
from signal_mgmt.qualification.reasons import EntryReason
from signal_mgmt.reference.types import to_tick


@dataclass(frozen=True, slots=True)
class Levels:
    entry: Decimal
    target: Decimal
    stop: Decimal

    @property
    def risk_per_unit(self) -> Decimal:
        return abs(self.entry - self.stop)

    def shifted_to(self, fill: Decimal, tick: Decimal) -> Levels:
        """The same distances around the real fill price (the bracket follows the fill).

        A fill between ticks (an average of several) puts both levels on the tick
        toward the fill: the target never promises more than planned, the stop
        never risks more, for LONG (target above) and SHORT (target below) alike.
        """
        return Levels(
            entry=fill,
            target=_toward(fill + (self.target - self.entry), fill, tick),
            stop=_toward(fill + (self.stop - self.entry), fill, tick),
        )


def _toward(level: Decimal, fill: Decimal, tick: Decimal) -> Decimal:
    """``level`` on the tick, rounded toward ``fill``."""
    return to_tick(level, tick, ROUND_FLOOR if level > fill else ROUND_CEILING)


def plan_levels(
    direction: Direction,
    floor: Decimal,
    ceiling: Decimal,
    reward_risk_ratio: Decimal,
    tick: Decimal,
) -> Levels | EntryReason:
    if floor >= ceiling:
        return EntryReason.ZERO_RISK
    if direction is Direction.LONG:
        risk = ceiling - floor
        target = to_tick(ceiling + reward_risk_ratio * risk, tick, ROUND_FLOOR)
        levels = Levels(entry=ceiling, target=target, stop=floor)
    else:
        risk = ceiling - floor
        target = to_tick(floor - reward_risk_ratio * risk, tick, ROUND_CEILING)
        levels = Levels(entry=floor, target=target, stop=ceiling)
    if levels.target <= 0 or levels.target == levels.entry:
        return EntryReason.INVALID_LEVELS
    return levels
