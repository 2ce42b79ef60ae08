"""Stage A: ticks in, ``ExitCandidate``s out, touching only the trades a tick concerns.

Open trades are indexed per symbol by their trigger levels in two sorted lists
(levels that fire on a rising price, levels that fire on a falling one). A tick
finds the crossed levels with ``bisect``: its cost grows with the number of
trades it actually triggers, not with the number of open trades. The same
trick keeps trailing-stop water marks current, and a heap per symbol holds
time deadlines. Besides those, a tick visits only the trades already beyond a
level, to confirm them (bricks), re-emit them, or notice that they cleared.

The detector is in-memory and disposable: ``add_trade`` / ``remove_trade`` keep
it current as trades open and close, and a restart rebuilds it from the
database (``signal_mgmt.exit.store.load_open_trades``). Whether a candidate
becomes a new exit is decided by the database (episodes, cooldown), never here.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

from signal_mgmt.errors import InvalidInputError, NotFoundError
from signal_mgmt.exit.bricks import BrickRule, BrickTracker
from signal_mgmt.exit.candidate import ExitCandidate, ExitCleared
from signal_mgmt.exit.conditions import (
    Crossing,
    ExitCondition,
    OpenTrade,
    Trigger,
    advance_water_mark,
    favourable,
)
from signal_mgmt.market.clock import require_aware
from signal_mgmt.models import ExitReason

_Entry = tuple[Decimal, int, ExitReason]


class _Side:
    """One direction's entries sorted by level, with their levels alone in a parallel list:
    bisecting plain ``Decimal``s needs no key function, and the nearest level is an index."""

    __slots__ = ("entries", "levels")

    def __init__(self) -> None:
        self.entries: list[_Entry] = []
        self.levels: list[Decimal] = []

    def add(self, entry: _Entry) -> None:
        index = bisect_left(self.entries, entry)
        self.entries.insert(index, entry)
        self.levels.insert(index, entry[0])

    def discard(self, entry: _Entry) -> None:
        index = bisect_left(self.entries, entry)
        if index < len(self.entries) and self.entries[index] == entry:
            del self.entries[index]
            del self.levels[index]


class _Book:
    """Sorted trigger levels of one symbol."""

    __slots__ = ("falling", "rising")

    def __init__(self) -> None:
        self.rising = _Side()  # fire when price >= level
        self.falling = _Side()  # fire when price <= level

    def _side(self, crossing: Crossing) -> _Side:
        return self.rising if crossing is Crossing.RISING else self.falling

    def add(self, trade_id: int, trigger: Trigger) -> None:
        self._side(trigger.crossing).add(_key(trade_id, trigger))

    def discard(self, trade_id: int, trigger: Trigger) -> None:
        self._side(trigger.crossing).discard(_key(trade_id, trigger))

    def reached(self, price: Decimal, *, strictly: bool = False) -> bool:
        """Whether ``price`` reaches (or passes, if ``strictly``) any level: the lowest
        rising and the highest falling level decide, so a quiet tick costs two comparisons."""
        rising, falling = self.rising.levels, self.falling.levels
        if strictly:
            return bool(rising and price > rising[0]) or bool(falling and price < falling[-1])
        return bool(rising and price >= rising[0]) or bool(falling and price <= falling[-1])

    def crossed(self, price: Decimal, *, strictly: bool = False) -> list[_Entry]:
        """Entries whose level ``price`` has reached (or passed, if ``strictly``): two
        bisects, then only the hits."""
        upper, lower = (bisect_left, bisect_right) if strictly else (bisect_right, bisect_left)
        rising, falling = self.rising, self.falling
        hits = rising.entries[: upper(rising.levels, price)]
        hits += falling.entries[lower(falling.levels, price) :]
        return hits


def _key(trade_id: int, trigger: Trigger) -> _Entry:
    return (trigger.level, trade_id, trigger.reason)


@dataclass(slots=True)
class _Active:
    """A (trade, reason) whose condition currently holds (or awaits brick confirmation)."""

    trigger: Trigger | None  # None for TIME
    tracker: BrickTracker | None
    emitted_at: datetime | None = None


@dataclass(slots=True)
class _Tracked:
    trade: OpenTrade
    water_mark: Decimal
    triggers: tuple[Trigger, ...] = ()
    deadline: datetime | None = None
    active: dict[ExitReason, _Active] = field(default_factory=dict)


@dataclass(slots=True)
class _Symbol:
    levels: _Book = field(default_factory=_Book)
    water_marks: _Book = field(default_factory=_Book)
    deadlines: list[tuple[datetime, int]] = field(default_factory=list)
    trade_ids: set[int] = field(default_factory=set)
    active_ids: set[int] = field(default_factory=set)
    last_price: Decimal | None = None
    tick_size: Decimal | None = None  # the instrument's (its trades'); None: not checked


@dataclass(frozen=True, slots=True)
class TickOutcome:
    """What one tick (or clock step) produced.

    ``water_marks``: trailing-stop marks that improved, to be persisted by the
    host (``save_water_marks``). ``touched``: how many trades the tick visited.
    """

    candidates: tuple[ExitCandidate, ...] = ()
    cleared: tuple[ExitCleared, ...] = ()
    water_marks: Mapping[int, Decimal] = field(default_factory=dict)
    touched: int = 0


_QUIET = TickOutcome(water_marks=MappingProxyType({}))


class ExitDetector:
    """Evaluates ``condition`` for every open trade, per tick, through a level index.

    ``confirmations`` maps a reason to the ``BrickRule`` it needs before it
    fires. While a condition keeps holding, its candidate is repeated at most
    every ``reemit_interval`` (the service ignores repeats inside an episode;
    repeating lets a later episode start once the cooldown has passed).
    """

    def __init__(
        self,
        condition: ExitCondition,
        *,
        confirmations: Mapping[ExitReason, BrickRule] | None = None,
        reemit_interval: timedelta = timedelta(seconds=60),
    ) -> None:
        if reemit_interval < timedelta(0):
            raise InvalidInputError("reemit_interval must be >= 0", field="reemit_interval")
        self.condition = condition
        self.confirmations = dict(confirmations or {})
        self.reemit_interval = reemit_interval
        self._trades: dict[int, _Tracked] = {}
        self._symbols: dict[str, _Symbol] = {}

    def __len__(self) -> int:
        return len(self._trades)

    def __contains__(self, trade_id: object) -> bool:
        return trade_id in self._trades

    # ------------------------------------------------------------------ membership

    def add_trade(self, trade: OpenTrade, water_mark: Decimal | None = None) -> None:
        """Start watching ``trade`` (replacing any earlier version of it).

        ``water_mark`` is a persisted trailing-stop mark; it never moves the mark
        below the entry price's favourable side.
        """
        self.remove_trade(trade.trade_id)
        mark = trade.entry_price
        if water_mark is not None:
            mark = advance_water_mark(trade.direction, mark, water_mark)
        tracked = _Tracked(trade=trade, water_mark=mark, deadline=self.condition.deadline(trade))
        self._trades[trade.trade_id] = tracked
        symbol = self._symbols.setdefault(trade.symbol, _Symbol())
        symbol.trade_ids.add(trade.trade_id)
        if trade.tick_size is not None:
            symbol.tick_size = trade.tick_size
        self._reindex(tracked, symbol)
        if self.condition.uses_water_mark:
            symbol.water_marks.add(trade.trade_id, self._mark_trigger(tracked))
        if tracked.deadline is not None:
            heapq.heappush(symbol.deadlines, (tracked.deadline, trade.trade_id))

    def remove_trade(self, trade_id: int) -> None:
        """Stop watching a trade (closed, or handed to another detector). Unknown ids are fine."""
        tracked = self._trades.pop(trade_id, None)
        if tracked is None:
            return
        symbol = self._symbols[tracked.trade.symbol]
        for trigger in tracked.triggers:
            symbol.levels.discard(trade_id, trigger)
        if self.condition.uses_water_mark:
            symbol.water_marks.discard(trade_id, self._mark_trigger(tracked))
        symbol.trade_ids.discard(trade_id)
        symbol.active_ids.discard(trade_id)
        # Deadline heap entries are dropped lazily when they come due.
        if not symbol.trade_ids:
            del self._symbols[tracked.trade.symbol]

    def water_mark(self, trade_id: int) -> Decimal:
        tracked = self._trades.get(trade_id)
        if tracked is None:
            raise NotFoundError("tracked trade", trade_id)
        return tracked.water_mark

    # ------------------------------------------------------------------ input

    def on_tick(self, symbol: str, price: Decimal, at: datetime) -> TickOutcome:
        """One traded price of ``symbol``. Returns candidates, clears and water-mark moves.

        A price off the instrument's tick raises ``InvalidInputError`` before any state
        changes: kept, it would become the reference of every later TIME and MANUAL exit
        (which Stage B refuses), and its crossings would count as emitted.
        """
        _check_price(price)
        require_aware(at, "at")
        state = self._symbols.get(symbol)
        if state is None:
            return TickOutcome()
        if state.tick_size is not None and price % state.tick_size != 0:
            raise InvalidInputError(
                f"price {price} is not on the tick {state.tick_size}", field="price", value=price
            )
        state.last_price = price
        if not (
            state.active_ids
            or state.levels.reached(price)
            or (self.condition.uses_water_mark and state.water_marks.reached(price, strictly=True))
            or (state.deadlines and state.deadlines[0][0] <= at)
        ):
            return _QUIET  # the common tick: nothing crossed, nothing active, nothing due
        touched: set[int] = set()
        marks: dict[int, Decimal] = {}
        for _, trade_id, _ in state.water_marks.crossed(price, strictly=True):
            touched.add(trade_id)
            tracked = self._trades[trade_id]
            better = advance_water_mark(tracked.trade.direction, tracked.water_mark, price)
            if better != tracked.water_mark:
                state.water_marks.discard(trade_id, self._mark_trigger(tracked))
                tracked.water_mark = better
                state.water_marks.add(trade_id, self._mark_trigger(tracked))
                self._reindex(tracked, state)
                marks[trade_id] = better
        touched.update(self._activate_due_deadlines(state, at))
        for _, trade_id, reason in state.levels.crossed(price):
            touched.add(trade_id)
            tracked = self._trades[trade_id]
            if reason not in tracked.active:
                trigger = next(t for t in tracked.triggers if t.reason is reason)
                rule = self.confirmations.get(reason)
                tracker = rule.tracker(trigger) if rule is not None else None
                tracked.active[reason] = _Active(trigger=trigger, tracker=tracker)
                state.active_ids.add(trade_id)
        touched.update(state.active_ids)
        candidates, cleared = self._sweep(state, price, at)
        return TickOutcome(tuple(candidates), tuple(cleared), marks, len(touched))

    def on_time(self, at: datetime) -> TickOutcome:
        """The clock moved without a tick: fire due TIME exits at each symbol's last price.

        A symbol not yet ticked since the detector started (e.g. after a restart) fires
        at the entry price on the tick: a square-off is a MARKET order, its price only a
        reference, and it must not wait for a tick that may never come.
        """
        require_aware(at, "at")
        candidates: list[ExitCandidate] = []
        touched = 0
        for state in self._symbols.values():
            touched += len(self._activate_due_deadlines(state, at))
            for trade_id in sorted(state.active_ids):
                tracked = self._trades[trade_id]
                time_exit = tracked.active.get(ExitReason.TIME)
                if time_exit is not None and self._due(time_exit, at):
                    time_exit.emitted_at = at
                    price = state.last_price
                    if price is None:
                        price = tracked.trade.entry_on_tick()
                    candidates.append(self._candidate(tracked, ExitReason.TIME, price, at, None))
        return TickOutcome(tuple(candidates), (), {}, touched)

    def request_manual_exit(
        self, trade_id: int, at: datetime, price: Decimal | None = None
    ) -> ExitCandidate:
        """A forced exit asked for by the host, at ``price``, else the symbol's last tick."""
        require_aware(at, "at")
        tracked = self._trades.get(trade_id)
        if tracked is None:
            raise NotFoundError("tracked trade", trade_id)
        if price is None:
            # A market exit: the price is a reference; before any tick, the entry's.
            last = self._symbols[tracked.trade.symbol].last_price
            price = last if last is not None else tracked.trade.entry_on_tick()
        _check_price(price)
        return self._candidate(tracked, ExitReason.MANUAL, price, at, None)

    # ------------------------------------------------------------------ internals

    def _mark_trigger(self, tracked: _Tracked) -> Trigger:
        # The mark moves when the price goes past it in the trade's favour.
        crossing = favourable(tracked.trade.direction)
        return Trigger(tracked.water_mark, crossing, ExitReason.TRAILING_STOP)

    def _reindex(self, tracked: _Tracked, state: _Symbol) -> None:
        new = self.condition.triggers(tracked.trade, tracked.water_mark)
        trade_id = tracked.trade.trade_id
        for trigger in set(tracked.triggers) - set(new):
            state.levels.discard(trade_id, trigger)
        for trigger in set(new) - set(tracked.triggers):
            state.levels.add(trade_id, trigger)
        tracked.triggers = new

    def _activate_due_deadlines(self, state: _Symbol, at: datetime) -> set[int]:
        due: set[int] = set()
        while state.deadlines and state.deadlines[0][0] <= at:
            deadline, trade_id = heapq.heappop(state.deadlines)
            tracked = self._trades.get(trade_id)
            if tracked is None or tracked.deadline != deadline:
                continue  # the trade left, or was re-added with another deadline
            tracked.active.setdefault(ExitReason.TIME, _Active(trigger=None, tracker=None))
            state.active_ids.add(trade_id)
            due.add(trade_id)
        return due

    def _sweep(
        self, state: _Symbol, price: Decimal, at: datetime
    ) -> tuple[list[ExitCandidate], list[ExitCleared]]:
        candidates: list[ExitCandidate] = []
        cleared: list[ExitCleared] = []
        for trade_id in sorted(state.active_ids):
            tracked = self._trades[trade_id]
            for reason, active in list(tracked.active.items()):
                trigger = active.trigger
                if trigger is not None and not trigger.is_crossed_by(price):
                    del tracked.active[reason]
                    if active.emitted_at is not None:
                        cleared.append(ExitCleared(trade_id=trade_id, reason=reason, cleared_at=at))
                    continue
                confirmed = active.tracker is None or active.tracker.update(price)
                if confirmed and self._due(active, at):
                    active.emitted_at = at
                    level = trigger.level if trigger is not None else None
                    candidates.append(self._candidate(tracked, reason, price, at, level))
            if not tracked.active:
                state.active_ids.discard(trade_id)
        return candidates, cleared

    def _due(self, active: _Active, at: datetime) -> bool:
        return active.emitted_at is None or at - active.emitted_at >= self.reemit_interval

    @staticmethod
    def _candidate(
        tracked: _Tracked, reason: ExitReason, price: Decimal, at: datetime, level: Decimal | None
    ) -> ExitCandidate:
        return ExitCandidate(
            trade_id=tracked.trade.trade_id,
            reason=reason,
            price=price,
            detected_at=at,
            symbol=tracked.trade.symbol,
            trigger_level=level,
        )


def _check_price(price: Decimal) -> None:
    if not isinstance(price, Decimal) or not price.is_finite() or price <= 0:
        raise InvalidInputError(
            "price must be a positive, finite Decimal", field="price", value=price
        )
