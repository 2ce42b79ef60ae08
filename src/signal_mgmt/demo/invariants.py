"""The end-of-day checks: what must hold however the day went.

1. Every committed fact has exactly one event in the outbox, and it was
   published (no fact without its event, no event without its fact).
2. The relay wrote each of this run's events to the events file exactly once.
3. No trade ever had two live exits, and no trade's position ever broke the
   position invariant (both checked after every settle pass).
4. Every closed trade has exactly one FILLED exit intent.
5. Every position opened today was squared off by the close.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select

from signal_mgmt.execution.broker import BrokerOrder
from signal_mgmt.models import (
    LIVE_EXIT_STATUSES,
    ExitIntent,
    ExitIntentStatus,
    ExitSignal,
    ExitSignalStatus,
    IntentDecision,
    Order,
    OrderPurpose,
    OutboxRow,
    OutboxStatus,
    Signal,
    SignalDelivery,
    SignalStatus,
    Trade,
    TradeIntent,
    TradeIntentStatus,
    TradeStatus,
)


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Fact:
    """Rows of ``table`` matching ``where`` are each announced by one ``event_type`` event."""

    event_type: str
    aggregate_type: str
    id_column: Any
    where: ColumnElement[bool]


_OPENED = (TradeStatus.OPEN, TradeStatus.CLOSED)
_EXIT_APPROVED = (
    ExitIntentStatus.APPROVED,
    ExitIntentStatus.PLACED,
    ExitIntentStatus.FILLED,
    ExitIntentStatus.FAILED,
)

FACTS: tuple[Fact, ...] = (
    Fact("SIGNAL_PUBLISHED", "signal", Signal.id, Signal.status == SignalStatus.PUBLISHED),
    Fact("SIGNAL_DELIVERY_CREATED", "signal_delivery", SignalDelivery.id, SignalDelivery.id > 0),
    Fact(
        "TRADE_INTENT_APPROVED",
        "trade_intent",
        TradeIntent.id,
        TradeIntent.decision == IntentDecision.APPROVED,
    ),
    Fact(
        "TRADE_INTENT_REJECTED",
        "trade_intent",
        TradeIntent.id,
        TradeIntent.decision == IntentDecision.REJECTED,
    ),
    Fact(
        "TRADE_INTENT_FILLED",
        "trade_intent",
        TradeIntent.id,
        TradeIntent.status == TradeIntentStatus.FILLED,
    ),
    Fact(
        "TRADE_INTENT_FAILED",
        "trade_intent",
        TradeIntent.id,
        TradeIntent.status == TradeIntentStatus.FAILED,
    ),
    Fact("TRADE_OPENED", "trade", Trade.id, Trade.status.in_(_OPENED)),
    Fact("TRADE_ENTRY_FAILED", "trade", Trade.id, Trade.status == TradeStatus.ENTRY_FAILED),
    Fact("TRADE_CLOSED", "trade", Trade.id, Trade.status == TradeStatus.CLOSED),
    Fact(
        "EXIT_SIGNAL_PUBLISHED",
        "exit_signal",
        ExitSignal.id,
        ExitSignal.status == ExitSignalStatus.PUBLISHED,
    ),
    Fact(
        "EXIT_INTENT_APPROVED", "exit_intent", ExitIntent.id, ExitIntent.status.in_(_EXIT_APPROVED)
    ),
    Fact(
        "EXIT_INTENT_REJECTED",
        "exit_intent",
        ExitIntent.id,
        ExitIntent.status == ExitIntentStatus.REJECTED,
    ),
    Fact("EXIT_INTENT_PLACED", "exit_intent", ExitIntent.id, ExitIntent.placed_at.is_not(None)),
    Fact(
        "EXIT_INTENT_FILLED",
        "exit_intent",
        ExitIntent.id,
        ExitIntent.status == ExitIntentStatus.FILLED,
    ),
    Fact(
        "EXIT_INTENT_FAILED",
        "exit_intent",
        ExitIntent.id,
        ExitIntent.status == ExitIntentStatus.FAILED,
    ),
)


def facts_have_one_published_event(conn: Connection) -> Check:
    problems: list[str] = []
    checked = 0
    for fact in FACTS:
        ids = {str(i) for i in conn.execute(select(fact.id_column).where(fact.where)).scalars()}
        events = conn.execute(
            select(OutboxRow.aggregate_id, OutboxRow.status).where(
                OutboxRow.event_type == fact.event_type,
                OutboxRow.aggregate_type == fact.aggregate_type,
            )
        ).all()
        per_fact = Counter(aggregate_id for aggregate_id, _ in events)
        unpublished = sum(status != OutboxStatus.PUBLISHED for _, status in events)
        checked += len(ids)
        for label, count in (
            ("without event", len(ids - per_fact.keys())),
            ("event without fact", len(per_fact.keys() - ids)),
            ("events twice", sum(1 for n in per_fact.values() if n > 1)),
            ("not published", unpublished),
        ):
            if count:
                problems.append(f"{fact.event_type}: {count} {label}")
    detail = f"{checked} facts, {len(FACTS)} kinds" + (
        f"; {'; '.join(problems)}" if problems else ""
    )
    return Check("every committed fact has exactly one published event", not problems, detail)


@dataclass(frozen=True, slots=True)
class OutboxBaseline:
    """Where the outbox and the events file stood before the run (a database may be reused)."""

    max_outbox_id: int
    pending_event_ids: frozenset[str]
    events_offset: int

    @classmethod
    def capture(cls, conn: Connection, events_path: Path) -> OutboxBaseline:
        top = conn.execute(select(func.coalesce(func.max(OutboxRow.id), 0))).scalar_one()
        pending = conn.execute(
            select(OutboxRow.event_id).where(OutboxRow.status == OutboxStatus.PENDING)
        ).scalars()
        offset = events_path.stat().st_size if events_path.exists() else 0
        return cls(int(top), frozenset(str(e) for e in pending), offset)


def read_new_events(events_path: Path, offset: int) -> list[dict[str, Any]]:
    if not events_path.exists():
        return []
    with events_path.open("rb") as handle:
        handle.seek(offset)
        return [json.loads(line) for line in handle.read().decode().splitlines() if line]


def run_events_published_once(
    conn: Connection, baseline: OutboxBaseline, events: Sequence[dict[str, Any]]
) -> Check:
    expected = {
        str(e)
        for e in conn.execute(
            select(OutboxRow.event_id).where(OutboxRow.id > baseline.max_outbox_id)
        ).scalars()
    } | baseline.pending_event_ids
    seen = Counter(str(event["event_id"]) for event in events)
    twice = sum(1 for n in seen.values() if n > 1)
    missing = len(expected - seen.keys())
    unexpected = len(seen.keys() - expected)
    ok = not (twice or missing or unexpected)
    detail = f"{len(expected)} events this run" + (
        "" if ok else f"; {missing} missing, {unexpected} unexpected, {twice} written twice"
    )
    return Check("the relay published each event of this run once (events file)", ok, detail)


def live_exit_violations(conn: Connection) -> int:
    """Trades with more than one live exit right now (must always be 0)."""
    per_trade = (
        select(ExitIntent.trade_id)
        .where(ExitIntent.status.in_(LIVE_EXIT_STATUSES))
        .group_by(ExitIntent.trade_id)
        .having(func.count() > 1)
        .subquery()
    )
    return int(conn.execute(select(func.count()).select_from(per_trade)).scalar_one())


_HOLDS_QUANTITY = frozenset({*LIVE_EXIT_STATUSES, ExitIntentStatus.FILLED})


def position_violations(conn: Connection, broker_orders: Mapping[str, BrokerOrder]) -> int:
    """Trades whose position breaks the position invariant right now (must always be 0).

    At the broker (the truth): a trade's exit fills never exceed its entry fills, so
    the net position never changes sign nor grows past the entry. In the rows: the
    exits live or FILLED, plus what failed exits filled, never add up to more than
    the trade's quantity.
    """
    filled: Counter[tuple[int, OrderPurpose]] = Counter()
    orders = conn.execute(select(Order.trade_id, Order.purpose, Order.client_order_id)).all()
    for trade_id, purpose, client_order_id in orders:
        order = broker_orders.get(client_order_id)
        if trade_id is not None and order is not None:
            filled[trade_id, OrderPurpose(purpose)] += order.filled_quantity
    broken = {
        trade_id
        for trade_id, purpose in filled
        if purpose is not OrderPurpose.ENTRY  # an exit: only the dispatcher names EXIT
        and filled[trade_id, purpose] > filled[trade_id, OrderPurpose.ENTRY]
    }
    committed: Counter[int] = Counter()
    exits = conn.execute(
        select(
            ExitIntent.trade_id, ExitIntent.status, ExitIntent.quantity, ExitIntent.filled_quantity
        )
    ).all()
    for trade_id, status, quantity, filled_quantity in exits:
        held = ExitIntentStatus(status) in _HOLDS_QUANTITY
        committed[trade_id] += quantity if held else filled_quantity
    quantities = dict(conn.execute(select(Trade.id, Trade.quantity)).tuples().all())
    broken |= {t for t, total in committed.items() if total > quantities[t]}
    return len(broken)


def no_position_violations(violations: int, checks: int) -> Check:
    return Check(
        "no trade's position ever changed sign or outgrew its entry",
        violations == 0,
        f"broker fills and exit rows checked after each of {checks} settle passes; "
        f"{violations} violations",
    )


def no_loop_failures(failures: int, passes: int) -> Check:
    return Check(
        "no trade loop pass reported a failure",
        failures == 0,
        f"{passes} settle passes; {failures} isolated step or trade failures",
    )


def no_two_live_exits(violations: int, checks: int) -> Check:
    return Check(
        "no trade ever had two live exits",
        violations == 0,
        f"checked after each of {checks} settle passes; {violations} violations",
    )


def closed_trades_have_one_filled_exit(conn: Connection) -> Check:
    filled = (
        select(ExitIntent.trade_id, func.count().label("n"))
        .where(ExitIntent.status == ExitIntentStatus.FILLED)
        .group_by(ExitIntent.trade_id)
        .subquery()
    )
    rows = conn.execute(
        select(Trade.id, filled.c.n)
        .outerjoin(filled, filled.c.trade_id == Trade.id)
        .where(Trade.status == TradeStatus.CLOSED)
    ).all()
    bad = [trade_id for trade_id, n in rows if n != 1]
    detail = f"{len(rows)} closed trades" + (f"; wrong: {bad[:10]}" if bad else "")
    return Check("every closed trade has exactly one filled exit intent", not bad, detail)


def squared_off(open_trades: int) -> Check:
    return Check(
        "every position was squared off by the close",
        open_trades == 0,
        f"{open_trades} trades still open or pending entry",
    )
