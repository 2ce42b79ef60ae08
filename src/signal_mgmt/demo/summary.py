"""The end-of-day summary: what THIS run did, apart from what the database holds.

``this_run`` counts the run's own work (ticks, candidates, events it emitted and
published, faults); ``database`` reads back the trading day's rows and the
outbox, which include earlier runs on the same database (a rerun is a replay).
The summary is plain JSON-ready data, so ``--json-summary`` writes exactly what
the table shows, and two runs with one seed can be compared as a whole.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from signal_mgmt.demo.day import DemoRun
from signal_mgmt.demo.invariants import (
    Check,
    closed_trades_have_one_filled_exit,
    facts_have_one_published_event,
    no_loop_failures,
    no_position_violations,
    no_two_live_exits,
    read_new_events,
    run_events_published_once,
    squared_off,
)
from signal_mgmt.market.calendar import nse_calendar
from signal_mgmt.models import (
    ExitIntent,
    ExitIntentStatus,
    ExitSignal,
    IntentDecision,
    OutboxRow,
    OutboxStatus,
    Signal,
    SignalDelivery,
    Trade,
    TradeIntent,
    TradeStatus,
)
from signal_mgmt.storage.db import transaction

_CENTS = Decimal("0.01")


def _money(value: Decimal) -> str:
    return str(value.quantize(_CENTS))


def _count_by(rows: list[Any]) -> dict[str, int]:
    return dict(sorted(Counter(rows).items()))


def _reasons(rows: list[list[str]]) -> dict[str, int]:
    return _count_by([code for codes in rows for code in codes])


def build_summary(engine: Engine, run: DemoRun) -> dict[str, Any]:
    with transaction(engine) as conn:
        return _summary(conn, run)


def _summary(conn: Connection, run: DemoRun) -> dict[str, Any]:
    day = run.config.day
    signal_ids = select(Signal.id).where(Signal.signal_day == day)
    intents = conn.execute(
        select(TradeIntent.decision, TradeIntent.status, TradeIntent.reason_codes).where(
            TradeIntent.signal_id.in_(signal_ids)
        )
    ).all()
    intent_ids = select(TradeIntent.id).where(TradeIntent.signal_id.in_(signal_ids))
    trades = conn.execute(
        select(Trade.id, Trade.user_broker_id, Trade.status, Trade.pnl).where(
            Trade.trade_intent_id.in_(intent_ids)
        )
    ).all()
    trade_ids = [t.id for t in trades]
    exits = conn.execute(
        select(ExitIntent.exit_reason, ExitIntent.status, ExitIntent.reason_codes).where(
            ExitIntent.trade_id.in_(trade_ids)
        )
    ).all()
    exit_signals = conn.execute(
        select(func.count()).where(ExitSignal.trade_id.in_(trade_ids))
    ).scalar_one()
    deliveries = conn.execute(
        select(func.count()).where(SignalDelivery.signal_id.in_(signal_ids))
    ).scalar_one()
    by_status = select(OutboxRow.status, func.count()).group_by(OutboxRow.status)
    outbox: dict[str, int] = {row[0]: row[1] for row in conn.execute(by_status)}
    new_events = read_new_events(run.config.events_path, run.baseline.events_offset)
    emitted = conn.execute(
        select(OutboxRow.event_type).where(OutboxRow.id > run.baseline.max_outbox_id)
    ).scalars()
    still_open = sum(t.status in (TradeStatus.OPEN, TradeStatus.PENDING_ENTRY) for t in trades)
    checks = [
        facts_have_one_published_event(conn),
        run_events_published_once(conn, run.baseline, new_events),
        no_two_live_exits(run.counts.live_exit_violations, run.counts.settle_passes),
        no_position_violations(run.counts.position_violations, run.counts.settle_passes),
        no_loop_failures(run.counts.loop_failures, run.counts.settle_passes),
        closed_trades_have_one_filled_exit(conn),
        squared_off(still_open),
    ]
    approved = [i for i in intents if i.decision == IntentDecision.APPROVED]
    rejected = [i for i in intents if i.decision == IntentDecision.REJECTED]
    exit_rejected = [e for e in exits if e.status == ExitIntentStatus.REJECTED]
    exit_filled = [e for e in exits if e.status == ExitIntentStatus.FILLED]
    return {
        "run": _run_section(run),
        "this_run": {
            "ticks": run.counts.ticks,
            "breakouts": run.counts.breakouts,
            "exit_candidates": run.counts.exit_candidates,
            "exits_suppressed_in_episode": run.counts.exits_suppressed,
            "events_emitted_by_type": _count_by(list(emitted)),
            "events_published": len(new_events),
            "faults": _faults_section(run),
        },
        "database": {
            "trading_day": day.isoformat(),
            "signals": conn.execute(
                select(func.count()).where(Signal.signal_day == day)
            ).scalar_one(),
            "deliveries": deliveries,
            "entry_intents": {
                "approved": len(approved),
                "rejected": len(rejected),
                "rejected_by_reason": _reasons([list(i.reason_codes) for i in rejected]),
                "approved_notes": _reasons([list(i.reason_codes) for i in approved]),
                "by_final_status": _count_by([i.status for i in intents]),
            },
            "trades": {
                "opened": sum(t.status in (TradeStatus.OPEN, TradeStatus.CLOSED) for t in trades),
                "entry_failed": sum(t.status == TradeStatus.ENTRY_FAILED for t in trades),
                "closed": sum(t.status == TradeStatus.CLOSED for t in trades),
                "still_open": still_open,
            },
            "exits": {
                "exit_signals": exit_signals,
                "approved": len(exits) - len(exit_rejected),
                "rejected": len(exit_rejected),
                "rejected_by_reason": _reasons([list(e.reason_codes) for e in exit_rejected]),
                "filled_by_exit_reason": _count_by([e.exit_reason for e in exit_filled]),
                "by_final_status": _count_by([e.status for e in exits]),
            },
            "pnl": _pnl_section(run, trades),
            "outbox": {
                "published": outbox.get(OutboxStatus.PUBLISHED, 0),
                "pending": outbox.get(OutboxStatus.PENDING, 0),
                "dead_letters": outbox.get(OutboxStatus.DEAD, 0),
            },
        },
        "invariants": [_check(c) for c in checks],
        "invariants_hold": all(c.ok for c in checks),
    }


def _run_section(run: DemoRun) -> dict[str, Any]:
    config = run.config
    return {
        "date": config.day.isoformat(),
        "seed": config.seed,
        "symbols": config.symbols,
        "users": config.users,
    }


def _pnl_section(run: DemoRun, trades: Sequence[Any]) -> dict[str, Any]:
    rows = []
    total = Decimal(0)
    for account in run.accounts:
        closed = [
            t
            for t in trades
            if t.user_broker_id == account.user_broker_id and t.status == TradeStatus.CLOSED
        ]
        pnl = sum((Decimal(t.pnl) for t in closed), Decimal(0))
        total += pnl
        rows.append(
            {
                "user_broker": account.label,
                "profile": account.profile,
                "closed_trades": len(closed),
                "pnl": _money(pnl),
            }
        )
    return {"by_user_broker": rows, "total": _money(total)}


def _faults_section(run: DemoRun) -> dict[str, Any]:
    zone = nse_calendar().timezone
    start, end = (
        moment.astimezone(zone) for moment in (run.plan.outage_start, run.plan.outage_end)
    )
    replay = run.counts.restart_replay
    return {
        "broker_outage": f"{start:%H:%M}-{end:%H:%M} {zone.key}",
        "broker_rejections": run.counts.faults.rejections,
        "unknown_outcomes": run.counts.faults.unknown_outcomes,
        "restarts": run.counts.restarts,
        "manual_exits": run.counts.manual_exits,
        "replayed_after_restart": None
        if replay is None
        else {
            "signals_finished": replay.signals_finished,
            "deliveries_qualified": replay.deliveries_qualified,
            "trades_advanced": replay.trades_advanced,
            "exit_signals_finished": replay.exit_signals_finished,
            "exit_intents_decided": replay.exit_intents_decided,
            "exit_intents_dispatched": replay.exit_intents_dispatched,
        },
    }


def _check(check: Check) -> dict[str, Any]:
    return {"name": check.name, "ok": check.ok, "detail": check.detail}
