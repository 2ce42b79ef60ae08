"""Entry qualification: "should user-broker U take signal S, and with what quantity?"

Pure: facts in, a decision with reason codes out. No session, no clock, no I/O;
``EntryQualificationService`` gathers the facts in the transaction that stores
the decision. A rule is a plain function ``EntryFacts -> EntryReason | None``;
a host composes its own tuple of rules (``DEFAULT_ENTRY_RULES + (my_rule,)``).
Every failing rule is reported, not just the first, so a rejection explains itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal

from signal_mgmt.market.calendar import Session
from signal_mgmt.models import Direction
from signal_mgmt.qualification.levels import Levels, plan_levels
from signal_mgmt.qualification.reasons import EntryReason
from signal_mgmt.qualification.sizing import size_entry
from signal_mgmt.reference.types import Account, InstrumentInfo, Position


@dataclass(frozen=True, slots=True)
class EntryFacts:
    """Everything entry qualification looks at; ``session`` is None on a holiday."""

    now: datetime
    local_time: time
    session: Session | None
    symbol: str
    direction: Direction
    detected_at: datetime
    effective_floor: Decimal
    effective_ceiling: Decimal
    max_signal_age: timedelta
    instrument: InstrumentInfo
    account: Account
    positions: tuple[Position, ...] = ()
    entry_cutoff_at: datetime | None = None
    """No new intraday entry from this instant on (the session's cut-off); None: none."""


@dataclass(frozen=True, slots=True)
class EntryDecision:
    approved: bool
    quantity: int
    reasons: tuple[EntryReason, ...]
    levels: Levels | None


EntryRule = Callable[[EntryFacts], EntryReason | None]


def broker_enabled(facts: EntryFacts) -> EntryReason | None:
    return None if facts.account.enabled else EntryReason.BROKER_DISABLED


def broker_connected(facts: EntryFacts) -> EntryReason | None:
    return None if facts.account.connected else EntryReason.BROKER_DISCONNECTED


def instrument_active(facts: EntryFacts) -> EntryReason | None:
    return None if facts.instrument.active else EntryReason.INSTRUMENT_INACTIVE


def market_open(facts: EntryFacts) -> EntryReason | None:
    if facts.session is None:
        return EntryReason.MARKET_HOLIDAY
    return None if facts.session.contains(facts.now) else EntryReason.MARKET_CLOSED


def before_entry_cutoff(facts: EntryFacts) -> EntryReason | None:
    """An entry at or after the cut-off would be squared off at once, or carried overnight."""
    cutoff = facts.entry_cutoff_at
    return None if cutoff is None or facts.now < cutoff else EntryReason.ENTRY_CUTOFF


def within_entry_window(facts: EntryFacts) -> EntryReason | None:
    """The user's own window, in exchange-local wall time: start <= t < end."""
    start, end = facts.account.entry_window_start, facts.account.entry_window_end
    if start is None or end is None:
        return None
    return None if start <= facts.local_time < end else EntryReason.OUTSIDE_ENTRY_WINDOW


def signal_fresh(facts: EntryFacts) -> EntryReason | None:
    age = facts.now - facts.detected_at
    return EntryReason.SIGNAL_STALE if age > facts.max_signal_age else None


def no_duplicate_position(facts: EntryFacts) -> EntryReason | None:
    held = any(position.symbol == facts.symbol for position in facts.positions)
    return EntryReason.DUPLICATE_POSITION if held else None


def below_max_open_trades(facts: EntryFacts) -> EntryReason | None:
    limit = facts.account.max_open_trades
    if limit is None or len(facts.positions) < limit:
        return None
    return EntryReason.MAX_OPEN_TRADES


DEFAULT_ENTRY_RULES: tuple[EntryRule, ...] = (
    broker_enabled,
    broker_connected,
    instrument_active,
    market_open,
    before_entry_cutoff,
    within_entry_window,
    signal_fresh,
    no_duplicate_position,
    below_max_open_trades,
)


def qualify_entry(
    facts: EntryFacts, rules: Sequence[EntryRule] = DEFAULT_ENTRY_RULES
) -> EntryDecision:
    """Run the rules, then plan the levels, then size within capital and limits."""
    reasons = [reason for rule in rules if (reason := rule(facts)) is not None]
    planned = plan_levels(
        facts.direction,
        facts.effective_floor,
        facts.effective_ceiling,
        facts.account.reward_risk_ratio,
        facts.instrument.tick_size,
    )
    if isinstance(planned, EntryReason):
        reasons.append(planned)
    if reasons:
        return EntryDecision(False, 0, tuple(reasons), None)
    assert isinstance(planned, Levels)
    sized = size_entry(
        facts.account,
        symbol=facts.symbol,
        entry=planned.entry,
        stop=planned.stop,
        lot_size=facts.instrument.lot_size,
        positions=facts.positions,
    )
    if sized.quantity == 0:
        return EntryDecision(False, 0, sized.reasons, None)
    return EntryDecision(True, sized.quantity, sized.reasons, planned)
