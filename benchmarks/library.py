"""The library side of each benchmark: the same work as baselines.py, through signal_mgmt."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from baselines import seed_pending
from database import BenchDatabase
from measure import Sample, Work, paced
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

from signal_mgmt.entry.candidate import SignalCandidate
from signal_mgmt.entry.service import SignalService
from signal_mgmt.market.calendar import nse_calendar
from signal_mgmt.market.clock import SystemClock
from signal_mgmt.models import Direction, OutboxRow, OutboxStatus, SizingMode
from signal_mgmt.outbox.emit import emit
from signal_mgmt.outbox.events import Event, OutboxMessage
from signal_mgmt.outbox.relay import OutboxRelay
from signal_mgmt.outbox.thread import RelayThread
from signal_mgmt.reference.admin import InstrumentSpec, ReferenceAdmin, UserBrokerSpec
from signal_mgmt.storage.db import make_engine, transaction

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


@contextmanager
def domain_event_worker(database: BenchDatabase) -> Iterator[Work]:
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
        yield one
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


@dataclass(frozen=True)
class DrainResult:
    rows_per_second: float
    order_violations: list[str]
    """One line per event published after a later event of its key (must stay empty)."""


def relay_drain(database: BenchDatabase, rows: int, relays: int, batch: int = 500) -> DrainResult:
    """Benchmark 3: ``OutboxRelay.run_once`` until empty, in ``relays`` processes.

    Raises if an event was published twice or missed. Per-key order is checked on
    the publish times (CLOCK_MONOTONIC, shared by the processes) and reported.
    """
    seed_pending(database, "public", rows)
    elapsed, seen = run_together(_relay_drainer, (database.url, batch), relays)
    published = sorted(
        (at, key, event_id, relay)
        for relay, per_relay in enumerate(seen)
        for at, key, event_id in per_relay
    )
    if len({event[2] for event in published}) != rows or len(published) != rows:
        raise RuntimeError(f"relays published {len(published)} events for {rows} rows")
    latest: dict[str, tuple[int, int, int]] = {}
    violations = []
    for at, key, event_id, relay in published:
        before = latest.get(key)
        if before is not None and before[1] > event_id:
            violations.append(
                f"key {key}: event {event_id} (relay {relay}) published "
                f"{(at - before[0]) / 1e6:.3f} ms after event {before[1]} (relay {before[2]})"
            )
        if before is None or event_id > before[1]:
            latest[key] = (at, event_id, relay)
    return DrainResult(rows / elapsed, violations)


def setup_audience(database: BenchDatabase, size: int) -> list[int]:
    """One instrument and ``size`` user-brokers subscribed to everything (for benchmark 2)."""
    engine = database.engine()
    admin = ReferenceAdmin(engine, SystemClock())
    admin.add_instruments([InstrumentSpec(symbol="RELIANCE", tick_size=Decimal("0.05"))])
    ids = []
    for n in range(size):
        user_broker_id = admin.add_user_broker(
            UserBrokerSpec(
                user_id=f"bench{n:03d}",
                broker="sim",
                available_capital=Decimal(1_000_000),
                sizing_mode=SizingMode.FIXED_QUANTITY,
                fixed_quantity=1,
            )
        )
        admin.subscribe(user_broker_id)
        ids.append(user_broker_id)
    engine.dispose()
    return ids


@contextmanager
def signal_fanout_worker(database: BenchDatabase, audience: int) -> Iterator[Work]:
    """Benchmark 2: ``SignalService.publish`` fanning out to ``audience`` user-brokers."""
    engine = database.engine()
    clock = SystemClock()
    service = SignalService(engine, clock, nse_calendar())

    def one(i: int) -> None:
        result = service.publish(
            SignalCandidate(
                symbol="RELIANCE",
                direction=Direction.LONG,
                confluence_type="BENCH",
                detected_at=clock.now(),
                effective_floor=Decimal("1400.00") + Decimal("0.05") * i,
                effective_ceiling=Decimal("1500.00"),
            )
        )
        if not result.created or len(result.delivery_ids) != audience:
            raise RuntimeError(f"publish {i}: {result}")

    try:
        yield one
    finally:
        engine.dispose()


class _TimingPublisher:
    """Notes when each event reached the publisher (CLOCK_MONOTONIC, shared by processes)."""

    def __init__(self) -> None:
        self.published: dict[str, int] = {}

    def publish(self, messages: Sequence[OutboxMessage]) -> None:
        at = time.monotonic_ns()
        for message in messages:
            self.published[str(message.event_id)] = at


def _produce(url: str, count: int, per_second: float, tag: str) -> dict[str, int]:
    """Emit ``count`` one-event transactions at a steady rate; per event id, the instant its
    COMMIT was sent (taken inside the transaction: the relay thread may publish before the
    commit call has returned to the producer)."""
    engine = make_engine(url)
    clock = SystemClock()
    committed: dict[str, int] = {}

    def one(i: int) -> None:
        event = Event[BenchRecorded](
            event_type="BENCH_RECORDED",
            aggregate_type="bench",
            aggregate_id=str(i),
            idempotency_key=f"{tag}:{i}",
            payload=BenchRecorded(bench_id=i),
        )
        with transaction(engine) as conn:
            emit(conn, event, clock)
            committed[str(event.event_id)] = time.monotonic_ns()  # COMMIT is sent next

    try:
        paced(count, per_second, one)
    finally:
        engine.dispose()
    return committed


def _producer_process(url: str, count: int, per_second: float, tag: str) -> Callable[[], Any]:
    return lambda: _produce(url, count, per_second, tag)


def publish_latency(
    database: BenchDatabase, count: int, per_second: float, separate_process: bool
) -> list[Sample]:
    """Benchmark 4: COMMIT sent -> published (ns) through a ``RelayThread`` with the default
    wake-ups.

    In one process the relay is woken by the emitting transaction's commit; from
    another process, by PostgreSQL NOTIFY (LISTEN in the relay thread).
    """
    engine = database.engine()
    publisher = _TimingPublisher()
    relay = RelayThread(OutboxRelay(engine, publisher), poll_interval=1.0).start()
    tag = uuid.uuid4().hex
    try:
        while not relay.running:
            time.sleep(0.01)
        if separate_process:
            _, (committed,) = run_together(
                _producer_process, (database.url, count, per_second, tag), 1
            )
        else:
            committed = _produce(database.url, count, per_second, tag)
        deadline = time.monotonic() + 30
        while len(publisher.published) < count and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        relay.stop()
        engine.dispose()
    missing = committed.keys() - publisher.published.keys()
    if missing:
        raise RuntimeError(f"{len(missing)} events not published within 30 s")
    return [(at, publisher.published[event_id] - at) for event_id, at in committed.items()]


@dataclass(frozen=True)
class Stream:
    """Benchmark 7: per event, when it committed (ns since the stream began) and its latency."""

    samples: list[tuple[int, int]]
    rate: float
    """Events per second the producer reached."""
    table: dict[str, int]
    """pg_stat_user_tables of the outbox afterwards (updates, HOT updates, dead rows, vacuums)."""


def _produce_keyed(url: str, count: int, per_second: float, tag: str, keys: int) -> Any:
    """Like ``_produce``, with ``keys`` partition keys taking turns (each emit locks its key),
    for at most ``count / per_second`` seconds: a producer that falls behind the rate (a busy
    machine) stops on time, and the rate it reached is reported."""
    engine = make_engine(url)
    clock = SystemClock()
    committed: dict[str, int] = {}
    ends = time.monotonic() + count / per_second

    def one(i: int) -> None:
        event = Event[BenchRecorded](
            event_type="BENCH_RECORDED",
            aggregate_type="bench",
            aggregate_id=str(i),
            idempotency_key=f"{tag}:{i}",
            partition_key=f"bench:{i % keys}",
            payload=BenchRecorded(bench_id=i),
        )
        if time.monotonic() > ends:
            return
        with transaction(engine) as conn:
            emit(conn, event, clock)
            committed[str(event.event_id)] = time.monotonic_ns()  # COMMIT is sent next

    try:
        paced(count, per_second, one)
    finally:
        engine.dispose()
    return committed


def _keyed_producer_process(
    url: str, count: int, per_second: float, tag: str, keys: int
) -> Callable[[], Any]:
    return lambda: _produce_keyed(url, count, per_second, tag, keys)


def latency_stream(
    database: BenchDatabase, seconds: float, per_second: float, keys: int = 100
) -> Stream:
    """Benchmark 7: a steady stream from another process through a ``RelayThread`` (NOTIFY)."""
    count = int(seconds * per_second)
    engine = database.engine()
    publisher = _TimingPublisher()
    relay = RelayThread(OutboxRelay(engine, publisher), poll_interval=1.0).start()
    tag = uuid.uuid4().hex
    try:
        while not relay.running:
            time.sleep(0.01)
        _, (committed,) = run_together(
            _keyed_producer_process, (database.url, count, per_second, tag, keys), 1
        )
        deadline = time.monotonic() + 30
        while len(publisher.published) < len(committed) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        relay.stop()
        engine.dispose()
    missing = committed.keys() - publisher.published.keys()
    if missing:
        raise RuntimeError(f"{len(missing)} events not published within 30 s")
    start = min(committed.values())
    rate = len(committed) / ((max(committed.values()) - start) / 1e9)
    samples = sorted(
        (at - start, publisher.published[event_id] - at) for event_id, at in committed.items()
    )
    with database.connect(autocommit=True) as conn:
        row = conn.execute(
            "SELECT n_tup_upd, n_tup_hot_upd, n_dead_tup, autovacuum_count, autoanalyze_count"
            " FROM pg_stat_user_tables WHERE relid = 'public.outbox'::regclass"
        ).fetchone()
    names = ("updates", "hot_updates", "dead_rows", "autovacuums", "autoanalyzes")
    return Stream(samples, rate, dict(zip(names, row or (), strict=True)))


HANGS_IN_PUBLISH = """
import sys, threading, time
from signal_mgmt.outbox.relay import OutboxRelay
from signal_mgmt.storage.db import make_engine

class Hangs:
    def publish(self, messages):
        print(len(messages), flush=True)
        threading.Event().wait()

relay = OutboxRelay(make_engine(sys.argv[1]), Hangs())
while not relay.run_once():
    time.sleep(0.001)
"""


def _count_claims(relay: OutboxRelay) -> list[int]:
    """Record each ``run_once`` result of ``relay`` (the list is truthy after the first)."""
    results: list[int] = []
    run_once = relay.run_once

    def counted() -> int:
        results.append(run_once())
        return results[-1]

    relay.run_once = counted  # type: ignore[method-assign]
    return results


def takeover_after_kill(database: BenchDatabase, rounds: int, events: int = 20) -> list[float]:
    """Benchmark 8: a relay process holding ``events`` events in flight is SIGKILLed; seconds
    until a ``RelayThread`` (default poll interval 1 s, nothing else wakes it) published them."""
    engine = database.engine()
    clock = SystemClock()
    rng = random.Random(12)
    times = []
    try:
        for round_ in range(rounds):
            command = [sys.executable, "-c", HANGS_IN_PUBLISH, database.url]
            publisher = _TimingPublisher()
            with subprocess.Popen(command, stdout=subprocess.PIPE) as holder:
                assert holder.stdout is not None
                with transaction(engine) as conn:
                    emit(
                        conn,
                        [
                            Event[BenchRecorded](
                                event_type="BENCH_RECORDED",
                                aggregate_type="bench",
                                aggregate_id=str(n),
                                idempotency_key=f"takeover:{round_}:{n}",
                                partition_key=f"takeover:{n % 2}",
                                payload=BenchRecorded(bench_id=n),
                            )
                            for n in range(events)
                        ],
                        clock,
                    )
                if int(holder.stdout.readline()) != events:
                    raise RuntimeError("the relay to kill did not take every event")
                relay = OutboxRelay(engine, publisher)
                claims = _count_claims(relay)
                survivor = RelayThread(relay, poll_interval=1.0).start()
                while not claims:  # it found the keys held and waits for a wake-up or the poll
                    time.sleep(0.001)
                time.sleep(rng.uniform(0.0, 1.0))  # a death at any point of its poll cycle
                killed = time.monotonic_ns()
                holder.send_signal(signal.SIGKILL)
            try:
                while len(publisher.published) < events:
                    time.sleep(0.001)
            finally:
                survivor.stop()
            times.append((min(publisher.published.values()) - killed) / 1e9)
    finally:
        engine.dispose()
    return times


def _keyed_writer(url: str, transactions: int, key: str) -> Callable[[], int]:
    engine = make_engine(url)
    clock = SystemClock()
    tag = uuid.uuid4().hex

    def write() -> int:
        for i in range(transactions):
            event = Event[BenchRecorded](
                event_type="BENCH_RECORDED",
                aggregate_type="bench",
                aggregate_id=str(i),
                idempotency_key=f"{tag}:{i}",
                partition_key=key or f"bench:{tag}",
                payload=BenchRecorded(bench_id=i),
            )
            with transaction(engine) as conn:
                emit(conn, event, clock)
        engine.dispose()
        return transactions

    return write


def keyed_writers(database: BenchDatabase, writers: int, transactions: int, one_key: bool) -> float:
    """Benchmark 9: ``writers`` processes emitting one-event transactions, all on one key
    (they queue on its lock) or each on its own key; transactions per second in total."""
    key = "bench:shared" if one_key else ""
    elapsed, counts = run_together(_keyed_writer, (database.url, transactions, key), writers)
    return sum(counts) / elapsed
