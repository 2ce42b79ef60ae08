"""The library side of each benchmark: the same work as baselines.py, through signal_mgmt."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from decimal import Decimal

from baselines import seed_pending
from database import BenchDatabase
from measure import rate
from parallel import run_together
from pydantic import BaseModel
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    MetaData,
    Numeric,
    String,
    Table,
    exists,
    insert,
    select,
)

from signal_mgmt.db import make_engine, transaction
from signal_mgmt.market.clock import SystemClock
from signal_mgmt.models import OutboxRow, OutboxStatus
from signal_mgmt.outbox.emit import emit
from signal_mgmt.outbox.events import Event, OutboxMessage
from signal_mgmt.outbox.relay import OutboxRelay

bench_domain = Table(
    "bench_domain",
    MetaData(),
    Column("id", BigInteger, primary_key=True),
    Column("symbol", String(64)),
    Column("price", Numeric(20, 6)),
    Column("created_at", DateTime(timezone=True)),
)


class BenchRecorded(BaseModel):
    bench_id: int


def domain_event_tx(database: BenchDatabase, count: int) -> float:
    """Benchmark 1: a domain row and its event in one ``transaction()`` with ``emit``."""
    engine = database.engine()
    clock = SystemClock()
    statement = insert(bench_domain).returning(bench_domain.c.id)

    def one(i: int) -> None:
        with transaction(engine) as conn:
            bench_id = conn.execute(
                statement,
                {"symbol": f"SYM{i % 500}", "price": Decimal("100.05"), "created_at": clock.now()},
            ).scalar_one()
            emit(
                conn,
                Event[BenchRecorded](
                    event_type="BENCH_RECORDED",
                    aggregate_type="bench",
                    aggregate_id=str(bench_id),
                    idempotency_key=str(bench_id),
                    payload=BenchRecorded(bench_id=bench_id),
                ),
                clock,
            )

    try:
        one(-1)  # warm the pool and the statement caches, as the raw side's connect does
        return rate(count, one)
    finally:
        engine.dispose()


class _RecordingPublisher:
    """A no-op publisher that notes when each event went out (to check per-key order)."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str, int]] = []

    def publish(self, messages: Sequence[OutboxMessage]) -> None:
        at = time.monotonic_ns()
        self.seen.extend((at, message.partition_key, message.id) for message in messages)


def _relay_drainer(url: str, batch: int) -> Callable[[], list[tuple[int, str, int]]]:
    engine = make_engine(url)
    publisher = _RecordingPublisher()
    relay = OutboxRelay(engine, publisher, batch_size=batch)
    pending = select(exists().where(OutboxRow.status == OutboxStatus.PENDING.value))

    def drain() -> list[tuple[int, str, int]]:
        while True:
            if relay.run_once():
                continue
            # Nothing claimable: either all done, or the other relay holds every open key.
            with engine.connect() as conn:
                if not conn.execute(pending).scalar_one():
                    break
            time.sleep(0.001)
        engine.dispose()
        return publisher.seen

    return drain


def relay_drain(database: BenchDatabase, rows: int, relays: int, batch: int = 500) -> float:
    """Benchmark 3: ``OutboxRelay.run_once`` until empty, in ``relays`` processes; rows/s.

    Raises if an event was published twice or missed, or if any key's events went
    out of id order across the relays.
    """
    seed_pending(database, "public", rows)
    elapsed, seen = run_together(_relay_drainer, (database.url, batch), relays)
    published = sorted(event for per_relay in seen for event in per_relay)
    if len({event_id for _, _, event_id in published}) != rows or len(published) != rows:
        raise RuntimeError(f"relays published {len(published)} events for {rows} rows")
    last_by_key: dict[str, int] = {}
    for _, key, event_id in published:
        if last_by_key.get(key, 0) > event_id:
            raise RuntimeError(f"key {key}: event {event_id} published after a later one")
        last_by_key[key] = event_id
    return rows / elapsed
