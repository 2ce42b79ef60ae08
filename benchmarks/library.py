"""The library side of each benchmark: the same work as baselines.py, through signal_mgmt."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from database import BenchDatabase
from measure import rate
from pydantic import BaseModel
from sqlalchemy import BigInteger, Column, DateTime, MetaData, Numeric, String, Table, insert

from signal_mgmt.db import transaction
from signal_mgmt.market.clock import SystemClock
from signal_mgmt.outbox.emit import emit
from signal_mgmt.outbox.events import Event

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


def now() -> datetime:
    return datetime.now(UTC)
