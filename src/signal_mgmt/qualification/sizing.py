"""Position sizing: whole lots only, never above capital or the account's limits.

Three modes (``user_brokers.sizing_mode``):

- FIXED_QUANTITY: ``fixed_quantity`` units, rounded down to whole lots;
- FIXED_CAPITAL: ``floor(fixed_capital / entry)`` units, rounded down to lots;
- RISK_PER_TRADE: ``floor(risk_amount / |entry - stop|)`` units, rounded down.

Then :func:`cap_to_limits` shrinks the quantity to the largest whole number of
lots that fits every headroom (free capital, per-symbol and total exposure).
Fewer than one lot is a rejection with a reason, never a rounded-up order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from signal_mgmt.errors import InvalidInputError
from signal_mgmt.models import SizingMode
from signal_mgmt.qualification.reasons import EntryReason
from signal_mgmt.reference.types import Account, Position


@dataclass(frozen=True, slots=True)
class Sized:
    quantity: int
    reasons: tuple[EntryReason, ...] = ()


def whole_lots(units: Decimal | int, lot_size: int) -> int:
    """The largest multiple of ``lot_size`` not above ``units`` (0 when below one lot)."""
    if lot_size < 1:
        raise ValueError("lot size must be at least 1")
    lots = int(Decimal(units).to_integral_value(rounding=ROUND_FLOOR)) // lot_size
    return max(lots, 0) * lot_size


def desired_quantity(account: Account, entry: Decimal, stop: Decimal, lot_size: int) -> Sized:
    """What the sizing mode asks for, in whole lots."""
    mode = account.sizing_mode
    if mode is SizingMode.FIXED_QUANTITY and account.fixed_quantity is not None:
        units: Decimal | int = account.fixed_quantity
    elif mode is SizingMode.FIXED_CAPITAL and account.fixed_capital is not None:
        units = account.fixed_capital / entry
    elif mode is SizingMode.RISK_PER_TRADE and account.risk_amount is not None:
        risk = abs(entry - stop)
        if risk == 0:
            return Sized(0, (EntryReason.ZERO_RISK,))
        units = account.risk_amount / risk
    else:
        raise ValueError(f"sizing mode {mode} is missing its parameter")
    quantity = whole_lots(units, lot_size)
    return Sized(quantity) if quantity > 0 else Sized(0, (EntryReason.BELOW_ONE_LOT,))


@dataclass(frozen=True, slots=True)
class Headroom:
    """How much more notional one limit allows; what to say if it binds."""

    amount: Decimal
    rejected: EntryReason
    capped: EntryReason


def headrooms(account: Account, symbol: str, positions: Sequence[Position]) -> list[Headroom]:
    total = sum((p.notional for p in positions), Decimal(0))
    on_symbol = sum((p.notional for p in positions if p.symbol == symbol), Decimal(0))
    rooms = [
        Headroom(
            account.available_capital - total,
            EntryReason.INSUFFICIENT_CAPITAL,
            EntryReason.CAPPED_BY_CAPITAL,
        )
    ]
    if account.max_exposure_per_symbol is not None:
        rooms.append(
            Headroom(
                account.max_exposure_per_symbol - on_symbol,
                EntryReason.SYMBOL_EXPOSURE_LIMIT,
                EntryReason.CAPPED_BY_SYMBOL_EXPOSURE,
            )
        )
    if account.max_total_exposure is not None:
        rooms.append(
            Headroom(
                account.max_total_exposure - total,
                EntryReason.TOTAL_EXPOSURE_LIMIT,
                EntryReason.CAPPED_BY_TOTAL_EXPOSURE,
            )
        )
    return rooms


def cap_to_limits(quantity: int, entry: Decimal, lot_size: int, rooms: Sequence[Headroom]) -> Sized:
    """Shrink ``quantity`` (whole lots) until ``quantity * entry`` fits every headroom."""
    notes: list[EntryReason] = []
    for room in rooms:
        fits = whole_lots(max(room.amount, Decimal(0)) / entry, lot_size)
        if fits == 0:
            return Sized(0, (room.rejected,))
        if fits < quantity:
            quantity = fits
            notes.append(room.capped)
    return Sized(quantity, tuple(notes))


def size_entry(
    account: Account,
    *,
    symbol: str,
    entry: Decimal,
    stop: Decimal,
    lot_size: int,
    positions: Sequence[Position],
) -> Sized:
    desired = desired_quantity(account, entry, stop, lot_size)
    if desired.quantity == 0:
        return desired
    return cap_to_limits(desired.quantity, entry, lot_size, headrooms(account, symbol, positions))


def slice_quantity(quantity: int, freeze_quantity: int | None, lot_size: int) -> tuple[int, ...]:
    """Split ``quantity`` into child orders of at most ``freeze_quantity`` (the exchange's
    per-order maximum), each a whole number of lots when the freeze allows it.
    """
    if quantity <= 0 or lot_size <= 0:
        raise InvalidInputError("quantity and lot size must be positive", field="quantity")
    if freeze_quantity is None or quantity <= freeze_quantity:
        return (quantity,)
    if freeze_quantity <= 0:
        raise InvalidInputError("freeze quantity must be positive", field="freeze_quantity")
    # The largest whole-lot slice under the freeze; a freeze below one lot is honoured as is.
    largest = (freeze_quantity // lot_size) * lot_size or freeze_quantity
    full, rest = divmod(quantity, largest)
    return (largest,) * full + ((rest,) if rest else ())
