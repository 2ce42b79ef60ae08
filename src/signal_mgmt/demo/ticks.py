"""A seeded tick generator: a random walk per symbol on its tick grid.

The walk has the features that stress an exit path: an opening gap, rare
intraday gaps of several ticks at once, and fast moves (bursts of steps in
one direction). The same seed, instruments and session give the same ticks.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from signal_mgmt.demo.sample import SampleInstrument
from signal_mgmt.errors import InvalidInputError
from signal_mgmt.market.calendar import Session


@dataclass(frozen=True, slots=True)
class Tick:
    symbol: str
    price: Decimal
    at: datetime


@dataclass(frozen=True, slots=True)
class TickProfile:
    """How the walk moves; volatilities are fractions of the price per step."""

    step: timedelta = timedelta(seconds=30)
    volatility: float = 0.0006
    opening_gap: float = 0.004
    gap_probability: float = 0.002
    gap_size: tuple[float, float] = (0.004, 0.012)
    burst_probability: float = 0.004
    burst_steps: tuple[int, int] = (4, 12)
    burst_drift: float = 2.0
    """Drift of a fast move, in volatilities per step."""


class _Walk:
    """One symbol's walk, in whole ticks so that every price sits on the grid."""

    def __init__(self, instrument: SampleInstrument, seed: int, profile: TickProfile) -> None:
        # A string seed is hashed deterministically (unlike hash()), so runs repeat.
        self._rng = random.Random(f"{seed}/{instrument.symbol}")
        self._tick = instrument.tick_size
        self._profile = profile
        opening = 1 + self._rng.gauss(0.0, profile.opening_gap)
        self._level = max(1, round(float(instrument.reference_price / self._tick) * opening))
        self._burst_left = 0
        self._burst_sign = 1

    def _sigma(self) -> float:
        return max(1.0, self._level * self._profile.volatility)

    def next_price(self) -> Decimal:
        profile, rng = self._profile, self._rng
        drift = 0.0
        if self._burst_left == 0 and rng.random() < profile.burst_probability:
            self._burst_left = rng.randint(*profile.burst_steps)
            self._burst_sign = rng.choice((-1, 1))
        if self._burst_left > 0:
            self._burst_left -= 1
            drift = self._burst_sign * profile.burst_drift * self._sigma()
        move = rng.gauss(drift, self._sigma())
        if rng.random() < profile.gap_probability:
            move += rng.choice((-1, 1)) * self._level * rng.uniform(*profile.gap_size)
        self._level = max(1, self._level + round(move))
        return (self._tick * self._level).quantize(self._tick)


def session_ticks(
    instruments: Sequence[SampleInstrument],
    session: Session,
    seed: int,
    profile: TickProfile | None = None,
) -> Iterator[Tick]:
    """Ticks for every instrument at each step of ``session``, in time order."""
    profile = profile or TickProfile()
    if profile.step <= timedelta(0):
        raise InvalidInputError("tick step must be positive", field="step", value=profile.step)
    walks = [(item.symbol, _Walk(item, seed, profile)) for item in instruments]
    at = session.open_at
    while at < session.close_at:
        for symbol, walk in walks:
            yield Tick(symbol, walk.next_price(), at)
        at += profile.step
