"""Property: any sequence of candidates (duplicates, reorderings, float noise inside a tick)
yields one row and one event per fact, through the whole ENTRY path, on both backends."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from entry_world import make_world
from signal_mgmt.entry import EntryCoordinator
from signal_mgmt.entry.qualification import EntryQualificationService
from signal_mgmt.execution import SimulatedBroker
from signal_mgmt.market.calendar import nse_calendar
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import (
    Order,
    OutboxRow,
    Signal,
    SignalDelivery,
    Trade,
    TradeIntent,
    TradeIntentStatus,
    TradeStatus,
)
from signal_mgmt.tms import TradeOpener

TICKS = {"INFY": Decimal("0.05"), "TCS": Decimal("0.10"), "RELIANCE": Decimal("0.05")}


@pytest.fixture
def fresh_engine(emptied_engine: Callable[[], Engine]) -> Callable[[], Engine]:
    """The test's database, emptied per call (per Hypothesis example)."""
    return emptied_engine


spec = st.tuples(
    st.sampled_from(sorted(TICKS)),
    st.sampled_from(["LONG", "SHORT"]),
    st.sampled_from(["VWAP", "ORB"]),
    st.integers(min_value=1900, max_value=1910),  # floor, in ticks
    st.integers(min_value=1, max_value=3),  # width, in ticks
)
noise = st.floats(min_value=-0.3, max_value=0.3, allow_nan=False)  # a fraction of one tick


@st.composite
def candidate_sequences(draw: st.DrawFn) -> list[tuple[tuple[Any, ...], float, float]]:
    specs = draw(st.lists(spec, min_size=1, max_size=5))
    repeated = [s for s in specs for _ in range(draw(st.integers(min_value=1, max_value=3)))]
    ordered = draw(st.permutations(repeated))
    return [(s, draw(noise), draw(noise)) for s in ordered]


def count_where(conn: Any, entity: Any, *where: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(entity).where(*where)).scalar_one())


def ids_of(conn: Any, event_type: str) -> Counter[str]:
    query = select(OutboxRow.aggregate_id).where(OutboxRow.event_type == event_type)
    return Counter(conn.execute(query).scalars())


@given(sequence=candidate_sequences())
def test_one_row_and_one_event_per_fact(
    sequence: list[tuple[tuple[Any, ...], float, float]],
    fresh_engine: Callable[[], Engine],
    clock: ManualClock,
) -> None:
    engine = fresh_engine()
    world = make_world(engine, clock, users=2)
    broker = SimulatedBroker({symbol: Decimal(190) for symbol in TICKS})
    coordinator = EntryCoordinator(
        world.signals,
        EntryQualificationService(engine, clock, nse_calendar()),
        TradeOpener(engine, clock, broker, sleep=lambda _: None),
        lanes=1,
    )
    with coordinator:
        for (symbol, direction, confluence, floor, width), low, high in sequence:
            tick = TICKS[symbol]
            coordinator.process(
                world.candidate(
                    symbol,
                    direction=direction,
                    confluence_type=confluence,
                    effective_floor=float(floor * tick) + low * float(tick),
                    effective_ceiling=float((floor + width) * tick) + high * float(tick),
                )
            )
    keys = {s for s, _, _ in sequence}
    audience = {"INFY": 2, "RELIANCE": 2, "TCS": 3}
    with engine.connect() as conn:
        signals = set(conn.execute(select(Signal.id)).scalars())
        deliveries = set(conn.execute(select(SignalDelivery.id)).scalars())
        intents = set(conn.execute(select(TradeIntent.id)).scalars())
        approved = count_where(conn, TradeIntent, TradeIntent.decision == "APPROVED")
        opened = set(
            conn.execute(select(Trade.id).where(Trade.status == TradeStatus.OPEN.value)).scalars()
        )
        filled = count_where(
            conn, TradeIntent, TradeIntent.status == TradeIntentStatus.FILLED.value
        )
        assert len(signals) == len(keys)
        assert len(deliveries) == sum(audience[key[0]] for key in keys)
        assert len(intents) == len(deliveries)
        assert count_where(conn, Trade) == approved == len(opened) == filled
        assert ids_of(conn, "SIGNAL_PUBLISHED") == Counter(str(i) for i in signals)
        assert ids_of(conn, "SIGNAL_DELIVERY_CREATED") == Counter(str(i) for i in deliveries)
        decided = ids_of(conn, "TRADE_INTENT_APPROVED") + ids_of(conn, "TRADE_INTENT_REJECTED")
        assert decided == Counter(str(i) for i in intents)
        assert ids_of(conn, "TRADE_OPENED") == Counter(str(i) for i in opened)
        assert sum(ids_of(conn, "TRADE_INTENT_PLACED").values()) == filled
        assert broker.place_calls == count_where(conn, Order)  # each order sent once
