"""Stage B of EXIT: "is it operationally permitted to place the exit now, and how?"

Pure: facts in, a decision with reason codes and an order plan out. No session,
no clock, no I/O; ``ExitIntentService`` gathers the facts under the trade's
lock and stores the decision.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum

from signal_mgmt.errors import InvalidInputError
from signal_mgmt.market.calendar import Session
from signal_mgmt.models import (
    Direction,
    ExitReason,
    OrderSide,
    OrderType,
    TradeStatus,
    plain_decimal,
)
from signal_mgmt.qualification.sizing import slice_quantity


class ExitRejectReason(StrEnum):
    TRADE_NOT_OPEN = "TRADE_NOT_OPEN"
    EXIT_ALREADY_FILLED = "EXIT_ALREADY_FILLED"  # a FILLED exit awaits the trade's close
    NO_OPEN_QUANTITY = "NO_OPEN_QUANTITY"
    BROKER_DISABLED = "BROKER_DISABLED"
    BROKER_DISCONNECTED = "BROKER_DISCONNECTED"
    EXIT_ALREADY_LIVE = "EXIT_ALREADY_LIVE"
    MARKET_HOLIDAY = "MARKET_HOLIDAY"
    MARKET_CLOSED = "MARKET_CLOSED"
    PORTFOLIO_LOCKED = "PORTFOLIO_LOCKED"
    TRADE_FROZEN = "TRADE_FROZEN"
    # Not a rule: the service refuses input older than the episode state it would change.
    STALE_CANDIDATE = "STALE_CANDIDATE"
    STALE_CLEAR = "STALE_CLEAR"


@dataclass(frozen=True, slots=True)
class ExitFacts:
    """Everything Stage B looks at, read in the same transaction that records the decision."""

    reason: ExitReason
    price: Decimal
    at: datetime
    trade_status: str
    direction: Direction
    open_quantity: int
    target_price: Decimal | None
    tick_size: Decimal
    lot_size: int
    freeze_quantity: int | None
    broker_enabled: bool
    broker_connected: bool
    live_exit: bool
    session: Session | None
    portfolio_locked: bool = False
    trade_frozen: bool = False
    filled_exit: bool = False  # a FILLED exit of this trade awaits TMS's close


ExitRule = Callable[[ExitFacts], ExitRejectReason | None]

PROTECTIVE_REASONS = frozenset(
    {ExitReason.STOP_LOSS, ExitReason.TRAILING_STOP, ExitReason.TIME, ExitReason.MANUAL}
)


def preempts(incoming: ExitReason, live: ExitReason) -> bool:
    """A protective exit pre-empts a resting TARGET; nothing else pre-empts anything."""
    return incoming in PROTECTIVE_REASONS and live is ExitReason.TARGET


def trade_is_open(facts: ExitFacts) -> ExitRejectReason | None:
    return None if facts.trade_status == TradeStatus.OPEN else ExitRejectReason.TRADE_NOT_OPEN


def no_filled_exit(facts: ExitFacts) -> ExitRejectReason | None:
    return ExitRejectReason.EXIT_ALREADY_FILLED if facts.filled_exit else None


def has_open_quantity(facts: ExitFacts) -> ExitRejectReason | None:
    return None if facts.open_quantity > 0 else ExitRejectReason.NO_OPEN_QUANTITY


def broker_enabled(facts: ExitFacts) -> ExitRejectReason | None:
    return None if facts.broker_enabled else ExitRejectReason.BROKER_DISABLED


def broker_connected(facts: ExitFacts) -> ExitRejectReason | None:
    return None if facts.broker_connected else ExitRejectReason.BROKER_DISCONNECTED


def no_live_exit(facts: ExitFacts) -> ExitRejectReason | None:
    return ExitRejectReason.EXIT_ALREADY_LIVE if facts.live_exit else None


def exit_window_open(facts: ExitFacts) -> ExitRejectReason | None:
    if facts.session is None:
        return ExitRejectReason.MARKET_HOLIDAY
    return None if facts.session.contains(facts.at) else ExitRejectReason.MARKET_CLOSED


def not_locked(facts: ExitFacts) -> ExitRejectReason | None:
    return ExitRejectReason.PORTFOLIO_LOCKED if facts.portfolio_locked else None


def not_frozen(facts: ExitFacts) -> ExitRejectReason | None:
    return ExitRejectReason.TRADE_FROZEN if facts.trade_frozen else None


DEFAULT_EXIT_RULES: tuple[ExitRule, ...] = (
    trade_is_open,
    no_filled_exit,
    has_open_quantity,
    broker_enabled,
    broker_connected,
    no_live_exit,
    exit_window_open,
    not_locked,
    not_frozen,
)


@dataclass(frozen=True, slots=True)
class ExitOrderPlan:
    """How the exit is placed: one child order per slice, all of the same type and limit."""

    side: OrderSide
    quantity: int
    order_type: OrderType
    limit_price: Decimal | None
    slices: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ExitDecision:
    reason_codes: tuple[ExitRejectReason, ...]
    plan: ExitOrderPlan

    @property
    def approved(self) -> bool:
        return not self.reason_codes


def qualify_exit(facts: ExitFacts, rules: Sequence[ExitRule] = DEFAULT_EXIT_RULES) -> ExitDecision:
    """Every failing rule's code (in rule order), and the order plan for the open quantity."""
    codes = tuple(code for rule in rules if (code := rule(facts)) is not None)
    return ExitDecision(reason_codes=codes, plan=plan_exit_order(facts))


def exit_side(direction: Direction) -> OrderSide:
    return OrderSide.SELL if direction is Direction.LONG else OrderSide.BUY


def plan_exit_order(facts: ExitFacts) -> ExitOrderPlan:
    """Targets leave as a limit at the target; stops, trailing stops, time and manual at market."""
    side = exit_side(facts.direction)
    quantity = max(facts.open_quantity, 0)
    slices = slice_quantity(quantity, facts.freeze_quantity, facts.lot_size) if quantity else ()
    if facts.reason is ExitReason.TARGET:
        level = facts.target_price if facts.target_price is not None else facts.price
        limit = round_limit_price(level, facts.tick_size, side)
        return ExitOrderPlan(side, quantity, OrderType.LIMIT, limit, slices)
    return ExitOrderPlan(side, quantity, OrderType.MARKET, None, slices)


def round_limit_price(price: Decimal, tick_size: Decimal, side: OrderSide) -> Decimal:
    """Put ``price`` on the tick without worsening the fill: a SELL rounds up, a BUY down."""
    if tick_size <= 0:
        raise InvalidInputError("tick size must be positive", field="tick_size", value=tick_size)
    rounding = ROUND_CEILING if side is OrderSide.SELL else ROUND_FLOOR
    ticks = (price / tick_size).to_integral_value(rounding=rounding)
    return plain_decimal(ticks * tick_size)
