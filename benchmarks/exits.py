"""Benchmarks 5 and 6: exit detection in memory, and tick -> committed APPROVED exit intent."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from database import BenchDatabase
from measure import Sample
from statements import counting

from signal_mgmt.entry.candidate import SignalCandidate
from signal_mgmt.entry.qualification import EntryQualificationService
from signal_mgmt.entry.service import SignalService
from signal_mgmt.execution.simulated import SimulatedBroker
from signal_mgmt.exit.conditions import ExitCondition, OpenTrade, StopLoss, Target
from signal_mgmt.exit.detector import ExitDetector
from signal_mgmt.exit.service import ExitIntentService, ExitOutcome
from signal_mgmt.market.calendar import nse_calendar
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import Direction, SizingMode
from signal_mgmt.reference.admin import InstrumentSpec, ReferenceAdmin, UserBrokerSpec
from signal_mgmt.storage.db import make_engine
from signal_mgmt.tms.open import TradeOpener

TICK = Decimal("0.05")
OPENED_AT = datetime(2026, 11, 25, 4, 30, tzinfo=UTC)  # 10:00 Asia/Kolkata, a trading day


def _on_tick(price: float) -> Decimal:
    return (Decimal(str(price)) / TICK).to_integral_value() * TICK


def open_trades(count: int, symbols: int, seed: int = 1) -> list[OpenTrade]:
    """LONG and SHORT trades entered within 0.3% of their symbol's price (100-2000),
    target 2% and stop 1% away, on the tick."""
    rng = random.Random(seed)
    base = [rng.uniform(100, 2000) for _ in range(symbols)]
    trades = []
    for trade_id in range(1, count + 1):
        entry = _on_tick(base[trade_id % symbols] * rng.uniform(0.997, 1.003))
        long = rng.random() < 0.5
        sign = Decimal(1 if long else -1)
        trades.append(
            OpenTrade(
                trade_id=trade_id,
                symbol=f"SYM{trade_id % symbols:03d}",
                direction=Direction.LONG if long else Direction.SHORT,
                entry_price=entry,
                target_price=_on_tick(float(entry * (1 + sign * Decimal("0.02")))),
                stop_price=_on_tick(float(entry * (1 - sign * Decimal("0.01")))),
                opened_at=OPENED_AT,
            )
        )
    return trades


def quiet_ticks(trades: list[OpenTrade], count: int, seed: int = 2) -> list[tuple[str, Decimal]]:
    """Ticks within 0.3% of a trade's entry on its symbol: the common case, nothing fires."""
    rng = random.Random(seed)
    return [
        (trade.symbol, _on_tick(float(trade.entry_price) * rng.uniform(0.997, 1.003)))
        for trade in (rng.choice(trades) for _ in range(count))
    ]


def _condition() -> ExitCondition:
    return Target() | StopLoss()


def detection_rates(trades: int, symbols: int, ticks: int, naive_ticks: int) -> tuple[float, float]:
    """Ticks per second through the ExitDetector's index, and through a scan of every trade."""
    book = open_trades(trades, symbols)
    stream = quiet_ticks(book, ticks)
    condition = _condition()
    detector = ExitDetector(condition)
    for trade in book:
        detector.add_trade(trade)
    at = OPENED_AT + timedelta(minutes=5)
    started = time.perf_counter()
    fired = sum(len(detector.on_tick(symbol, price, at).candidates) for symbol, price in stream)
    indexed = len(stream) / (time.perf_counter() - started)

    started = time.perf_counter()
    scanned = 0
    for symbol, price in stream[:naive_ticks]:
        for trade in book:
            if trade.symbol == symbol and condition.met(trade, price, at, trade.entry_price):
                scanned += 1
    naive = naive_ticks / (time.perf_counter() - started)
    if fired > len(stream) // 100:
        raise RuntimeError(f"{fired} candidates from quiet ticks: the workload is not quiet")
    return indexed, naive


def _open_real_trades(database: BenchDatabase, count: int) -> tuple[ManualClock, list[OpenTrade]]:
    """``count`` OPEN trades (one symbol each) through the library's own entry path."""
    engine = make_engine(database.url)
    clock = ManualClock(OPENED_AT)
    calendar = nse_calendar()
    admin = ReferenceAdmin(engine, clock)
    symbols = [f"EXB{n:04d}" for n in range(count)]
    admin.add_instruments([InstrumentSpec(symbol=s, tick_size=TICK) for s in symbols])
    account = admin.add_user_broker(
        UserBrokerSpec(
            user_id="bench",
            broker="sim",
            available_capital=Decimal(10**12),
            sizing_mode=SizingMode.FIXED_QUANTITY,
            fixed_quantity=10,
        )
    )
    admin.subscribe(account)
    broker = SimulatedBroker({s: Decimal("100.00") for s in symbols})
    signals = SignalService(engine, clock, calendar)
    qualification = EntryQualificationService(engine, clock, calendar)
    opener = TradeOpener(engine, clock, broker)
    trades = []
    for symbol in symbols:
        published = signals.publish(
            SignalCandidate(
                symbol=symbol,
                direction=Direction.LONG,
                confluence_type="BENCH",
                detected_at=clock.now(),
                effective_floor=Decimal("99.00"),
                effective_ceiling=Decimal("100.00"),
            )
        )
        for delivery_id in published.delivery_ids:
            intent = qualification.qualify(delivery_id)
            opened = opener.open(intent.trade_intent_id)
            if opened.trade_id is None:
                raise RuntimeError(f"bench trade for {symbol} did not open: {opened}")
            trades.append(opened.trade_id)
    engine.dispose()
    from signal_mgmt.exit.store import load_open_trades

    engine = make_engine(database.url)
    book = [trade for trade, _ in load_open_trades(engine)]
    engine.dispose()
    return clock, book


@dataclass(frozen=True)
class ExitLatencies:
    samples: list[Sample]
    """(tick instant, tick -> committed APPROVED) in ns, one per trade but the first."""
    statements: int
    """Statements of the first trade's ``on_exit_detected`` (not timed)."""


def tick_to_approved_exit(database: BenchDatabase, count: int) -> ExitLatencies:
    """Per trade: a tick through its target -> ExitDetector -> ExitIntentService commit."""
    clock, book = _open_real_trades(database, count)
    engine = make_engine(database.url)
    service = ExitIntentService(engine, clock)
    detector = ExitDetector(_condition())
    for trade in book:
        detector.add_trade(trade)
    clock.advance(timedelta(minutes=1))
    samples: list[Sample] = []
    statements = 0
    try:
        for number, trade in enumerate(book):
            assert trade.target_price is not None
            started = time.monotonic_ns()
            outcome = detector.on_tick(trade.symbol, trade.target_price, clock.now())
            if number == 0:
                with counting() as seen:
                    results = [service.on_exit_detected(c) for c in outcome.candidates]
                statements = len(seen)
            else:
                results = [service.on_exit_detected(c) for c in outcome.candidates]
                samples.append((started, time.monotonic_ns() - started))
            if [r.outcome for r in results] != [ExitOutcome.APPROVED]:
                raise RuntimeError(f"trade {trade.trade_id}: expected one APPROVED exit, {results}")
    finally:
        engine.dispose()
    return ExitLatencies(samples, statements)
