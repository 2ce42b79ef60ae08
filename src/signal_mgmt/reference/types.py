"""Reference facts as the entry path reads them: instruments, accounts, open positions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from decimal import ROUND_HALF_UP, Decimal

from signal_mgmt.errors import InvalidInputError
from signal_mgmt.models import SizingMode


def to_tick(price: Decimal, tick: Decimal, rounding: str = ROUND_HALF_UP) -> Decimal:
    """``price`` on a multiple of ``tick``, written with the tick's decimal places.

    The written form matters: SQLite stores Money as text, so 100.5 and 100.50
    would be two different keys. ``rounding`` is a ``decimal`` rounding mode
    (ROUND_FLOOR / ROUND_CEILING to round in a chosen direction).
    """
    if not (tick.is_finite() and tick > 0):
        raise InvalidInputError("tick size must be a positive number", field="tick_size")
    if not price.is_finite():
        raise InvalidInputError("price must be finite", field="price", value=price)
    places = min(int(tick.normalize().as_tuple().exponent), 0)
    steps = (price / tick).to_integral_value(rounding=rounding)
    return (steps * tick).quantize(Decimal(1).scaleb(places))


@dataclass(frozen=True, slots=True)
class InstrumentInfo:
    symbol: str
    tick_size: Decimal
    lot_size: int
    freeze_quantity: int | None = None
    exchange: str = "NSE"
    segment: str = "EQ"
    active: bool = True

    def to_tick(self, price: Decimal, rounding: str = ROUND_HALF_UP) -> Decimal:
        return to_tick(price, self.tick_size, rounding)


@dataclass(frozen=True, slots=True)
class Account:
    """One user-broker: its state, capital, limits, sizing and entry window."""

    user_broker_id: int
    enabled: bool
    connected: bool
    available_capital: Decimal
    sizing_mode: SizingMode
    reward_risk_ratio: Decimal = Decimal(2)
    fixed_quantity: int | None = None
    fixed_capital: Decimal | None = None
    risk_amount: Decimal | None = None
    max_open_trades: int | None = None
    max_exposure_per_symbol: Decimal | None = None
    max_total_exposure: Decimal | None = None
    entry_window_start: time | None = None
    entry_window_end: time | None = None


@dataclass(frozen=True, slots=True)
class Position:
    """An open or about-to-open position: approved or placed intents and open trades."""

    symbol: str
    quantity: int
    notional: Decimal
