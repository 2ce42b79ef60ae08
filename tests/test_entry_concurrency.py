"""Eight processes publish the same candidates at once: one row and one event per fact."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select

from entry_workers import publish_all
from entry_world import make_world
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import Base, OutboxRow, Signal, SignalDelivery, TradeIntent

PROCESSES = 8


@pytest.mark.postgres_only
@pytest.mark.slow
def test_processes_racing_on_the_same_candidates(
    engine: Engine, database_url: str, clock: ManualClock
) -> None:
    world = make_world(engine, clock, users=3)
    candidates = [
        world.candidate(symbol, direction=direction, effective_floor=floor).model_dump(mode="json")
        for symbol in ("INFY", "TCS", "RELIANCE")
        for direction in ("LONG", "SHORT")
        for floor in (Decimal("98.00"), Decimal("99.00"))
    ]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    workers = [
        context.Process(
            target=publish_all,
            args=(database_url, clock.now().isoformat(), candidates, barrier, results),
        )
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    reports = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0] * PROCESSES

    created = Counter(signal for report in reports for signal, new, _ in report if new)
    assert len(created) == len(candidates)  # every candidate was new in exactly one process
    assert set(created.values()) == {1}
    intents_created = sum(n for report in reports for _, _, n in report)
    with engine.connect() as conn:

        def rows(entity: type[Base]) -> int:
            return int(conn.execute(select(func.count()).select_from(entity)).scalar_one())

        events = Counter(
            (row.event_type, row.aggregate_id)
            for row in conn.execute(select(OutboxRow.event_type, OutboxRow.aggregate_id))
        )
        assert rows(Signal) == len(candidates)
        expected_deliveries = sum(4 if c["symbol"] == "TCS" else 3 for c in candidates)
        assert rows(SignalDelivery) == expected_deliveries
        assert rows(TradeIntent) == expected_deliveries == intents_created
    assert set(events.values()) == {1}
    kinds = Counter(kind for kind, _ in events)
    assert kinds["SIGNAL_PUBLISHED"] == len(candidates)
    assert kinds["SIGNAL_DELIVERY_CREATED"] == expected_deliveries
    assert kinds["TRADE_INTENT_APPROVED"] + kinds["TRADE_INTENT_REJECTED"] == expected_deliveries
