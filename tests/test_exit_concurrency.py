"""Many deliveries of one candidate at once: one signal, one intent, one order."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import timedelta
from decimal import Decimal
from multiprocessing.synchronize import Barrier
from queue import Queue

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, insert

from entry_support import AT
from exit_support import candidate, event_types, rows, seed
from signal_mgmt.errors import IntegrityViolation
from signal_mgmt.execution.exit_dispatcher import ExitIntentDispatcher
from signal_mgmt.execution.simulated import SimulatedBroker
from signal_mgmt.exit.service import ExitIntentService
from signal_mgmt.exit.settings import ExitSettings
from signal_mgmt.market import ManualClock
from signal_mgmt.models import ExitIntent, ExitSignal, Order
from signal_mgmt.storage.db import make_engine, transaction

WORKERS = 8


def deliver(url: str, trade_id: int, start: Barrier, results: Queue[tuple[str, int]]) -> None:
    """One process: deliver the candidate twice, then run a dispatcher pass."""
    engine = make_engine(url)
    clock = ManualClock(AT)
    service = ExitIntentService(engine, clock, settings=ExitSettings(cooldown=timedelta(hours=1)))
    broker = SimulatedBroker({"INFY": Decimal("94.95")})
    dispatcher = ExitIntentDispatcher(engine, broker, clock, sleep=lambda _: None)
    start.wait()
    outcomes = [service.on_exit_detected(candidate(trade_id)).outcome.value for _ in range(2)]
    dispatcher.dispatch_pending()
    engine.dispose()
    results.put((",".join(outcomes), broker.place_calls))


@pytest.mark.postgres_only
@pytest.mark.slow
def test_eight_processes_deliver_the_same_candidate(engine: Engine, database_url: str) -> None:
    trade_id = seed(engine)
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(WORKERS)
    results: Queue[tuple[str, int]] = spawn.Queue()  # type: ignore[assignment]
    workers = [
        spawn.Process(target=deliver, args=(database_url, trade_id, start, results))
        for _ in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0] * WORKERS
    outcomes = [results.get(timeout=5) for _ in range(WORKERS)]
    all_outcomes = ",".join(o for o, _ in outcomes).split(",")
    assert sorted(set(all_outcomes)) == ["APPROVED", "SUPPRESSED"]
    assert all_outcomes.count("APPROVED") == 1
    assert sum(calls for _, calls in outcomes) == 1  # one placement across all processes
    assert len(rows(engine, ExitSignal)) == 1
    [intent] = rows(engine, ExitIntent)
    assert intent.status == "PLACED"
    assert len(rows(engine, Order)) == 1
    assert sorted(event_types(engine)) == [
        "EXIT_INTENT_APPROVED",
        "EXIT_INTENT_PLACED",
        "EXIT_SIGNAL_PUBLISHED",
    ]


def test_the_database_refuses_a_second_live_exit(engine: Engine, clock: ManualClock) -> None:
    trade_id = seed(engine)
    result = ExitIntentService(engine, clock).on_exit_detected(candidate(trade_id))
    [intent] = rows(engine, ExitIntent)
    clone = {
        c.name: getattr(intent, c.name)
        for c in ExitIntent.__table__.c
        if c.name not in {"id", "exit_signal_id"}
    }
    [signal] = rows(engine, ExitSignal)
    with engine.begin() as conn:
        second_signal = conn.execute(
            insert(ExitSignal).returning(ExitSignal.id),
            {
                **{
                    c.name: getattr(signal, c.name)
                    for c in ExitSignal.__table__.c
                    if c.name != "id"
                },
                "episode_id": 2,
            },
        ).scalar_one()
    with pytest.raises(IntegrityViolation), transaction(engine) as conn:
        conn.execute(
            insert(ExitIntent),
            {**clone, "exit_signal_id": second_signal, "episode_id": 2, "status": "PENDING"},
        )
    with transaction(engine) as conn:  # a decided (not live) second intent is fine
        conn.execute(
            insert(ExitIntent),
            {**clone, "exit_signal_id": second_signal, "episode_id": 2, "status": "REJECTED"},
        )
        live = conn.execute(
            sa.select(sa.func.count())
            .select_from(ExitIntent)
            .where(ExitIntent.status.in_(["PENDING", "APPROVED", "PLACED"]))
        ).scalar_one()
    assert (result.exit_intent_id, live) == (intent.id, 1)


def test_threads_deliver_the_same_candidate(engine: Engine, clock: ManualClock) -> None:
    trade_id = seed(engine)
    service = ExitIntentService(engine, clock)
    start = threading.Barrier(WORKERS)
    outcomes: list[str] = []

    def worker() -> None:
        start.wait()
        outcomes.append(service.on_exit_detected(candidate(trade_id)).outcome.value)

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["APPROVED"] + ["SUPPRESSED"] * (WORKERS - 1)
    assert len(rows(engine, ExitSignal)) == 1
    assert len(rows(engine, ExitIntent)) == 1
