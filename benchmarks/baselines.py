"""The raw psycopg baselines: the same work as the library, with nothing in between."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from database import BenchDatabase
from measure import Sample, Work
from parallel import run_together
from psycopg.types.json import Jsonb

OUTBOX_COLUMNS = (
    "event_id, event_type, aggregate_type, aggregate_id, partition_key, payload, headers,"
    " created_at, available_at, attempts, status"
)
OUTBOX_VALUES = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, 0, 'PENDING')"


def outbox_params(event_type: str, aggregate: str, aggregate_id: object) -> tuple[object, ...]:
    now = datetime.now(UTC)
    key = f"{aggregate}:{aggregate_id}"
    payload = Jsonb({f"{aggregate}_id": aggregate_id})
    return (
        uuid.uuid4(),
        event_type,
        aggregate,
        str(aggregate_id),
        key,
        payload,
        Jsonb({}),
        now,
        now,
    )


@contextmanager
def domain_event_worker(database: BenchDatabase) -> Iterator[Work]:
    """Benchmark 1 baseline: one domain row + one outbox row, committed, per transaction."""
    with database.connect() as conn:

        def one(i: int) -> None:
            row = conn.execute(
                "INSERT INTO raw.bench_domain (symbol, price, created_at)"
                " VALUES (%s, %s, %s) RETURNING id",
                (f"SYM{i % 500}", Decimal("100.05"), datetime.now(UTC)),
            ).fetchone()
            assert row is not None
            conn.execute(
                f"INSERT INTO raw.outbox ({OUTBOX_COLUMNS}) VALUES {OUTBOX_VALUES}",
                outbox_params("BENCH_RECORDED", "bench", row[0]),
            )
            conn.commit()

        yield one


@contextmanager
def single_insert_worker(database: BenchDatabase) -> Iterator[Work]:
    """The issue's literal baseline for benchmark 1: one INSERT + COMMIT, no event."""
    with database.connect() as conn:

        def one(i: int) -> None:
            conn.execute(
                "INSERT INTO raw.bench_domain (symbol, price, created_at) VALUES (%s, %s, %s)",
                (f"SYM{i % 500}", Decimal("100.05"), datetime.now(UTC)),
            )
            conn.commit()

        yield one


@contextmanager
def signal_fanout_worker(database: BenchDatabase, user_broker_ids: list[int]) -> Iterator[Work]:
    """Benchmark 2 baseline: 1 signal + N deliveries + N+1 outbox rows, multi-row VALUES."""
    deliveries_sql = (
        "INSERT INTO raw.signal_deliveries (signal_id, user_broker_id, symbol, created_at) VALUES "
        + ", ".join(["(%s, %s, %s, %s)"] * len(user_broker_ids))
        + " RETURNING id"
    )
    outbox_sql = f"INSERT INTO raw.outbox ({OUTBOX_COLUMNS}) VALUES " + ", ".join(
        [OUTBOX_VALUES] * (len(user_broker_ids) + 1)
    )
    with database.connect() as conn:

        def one(i: int) -> None:
            now = datetime.now(UTC)
            row = conn.execute(
                "INSERT INTO raw.signals (symbol, direction, confluence_type, signal_day,"
                " effective_floor, effective_ceiling, status, detected_at, published_at,"
                " metadata, created_at) VALUES (%s, 'LONG', 'ORB15', %s, %s, %s, 'PUBLISHED',"
                " %s, %s, %s, %s) RETURNING id",
                (
                    "RELIANCE",
                    now.date(),
                    Decimal("1400.00") + Decimal("0.05") * i,
                    Decimal("1500.00"),
                    now,
                    now,
                    Jsonb({}),
                    now,
                ),
            ).fetchone()
            assert row is not None
            signal_id = row[0]
            params: list[object] = []
            for user_broker_id in user_broker_ids:
                params += [signal_id, user_broker_id, "RELIANCE", now]
            delivery_ids = [r[0] for r in conn.execute(deliveries_sql, params).fetchall()]
            events = [outbox_params("SIGNAL_PUBLISHED", "signal", signal_id)]
            events += [
                outbox_params("SIGNAL_DELIVERY_CREATED", "delivery", d) for d in delivery_ids
            ]
            conn.execute(outbox_sql, [value for event in events for value in event])
            conn.commit()

        yield one


def seed_pending(database: BenchDatabase, schema: str, rows: int, keys: int = 1000) -> None:
    """``rows`` PENDING outbox rows over ``keys`` partition keys (one transaction)."""
    with database.connect() as conn:
        conn.execute(
            f"INSERT INTO {schema}.outbox ({OUTBOX_COLUMNS})"
            " SELECT gen_random_uuid(), 'BENCH', 'bench', (g %% %s)::text, 'bench:' || (g %% %s),"
            " jsonb_build_object('n', g), '{}'::jsonb, now(), now(), 0, 'PENDING'"
            " FROM generate_series(1, %s) AS g",
            (keys, keys, rows),
        )
        conn.commit()
    with database.connect(autocommit=True) as conn:
        conn.execute(f"VACUUM ANALYZE {schema}.outbox")


def _skip_locked_drainer(conninfo: str, batch: int) -> Callable[[], int]:
    import psycopg

    conn = psycopg.connect(conninfo)

    def drain() -> int:
        drained = 0
        while True:
            rows = conn.execute(
                "SELECT id, event_id, event_type, aggregate_type, aggregate_id, partition_key,"
                " payload, headers, created_at, attempts FROM raw.outbox"
                " WHERE status = 'PENDING' ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                (batch,),
            ).fetchall()
            if not rows:
                conn.commit()
                conn.close()
                return drained
            conn.execute(
                "UPDATE raw.outbox SET status = 'PUBLISHED', published_at = now()"
                " WHERE id = ANY(%s)",
                ([r[0] for r in rows],),
            )
            conn.commit()
            drained += len(rows)

    return drain


def skip_locked_drain(database: BenchDatabase, rows: int, drainers: int, batch: int = 500) -> float:
    """Benchmark 3 baseline: claim a batch FOR UPDATE SKIP LOCKED, mark it published; rows/s."""
    seed_pending(database, "raw", rows)
    elapsed, counts = run_together(_skip_locked_drainer, (database.conninfo, batch), drainers)
    if sum(counts) != rows:
        raise RuntimeError(f"raw drain published {sum(counts)} of {rows} rows")
    return rows / elapsed


def notify_latency(database: BenchDatabase, count: int, per_second: float) -> list[Sample]:
    """Benchmark 4 baseline: COMMIT of INSERT + NOTIFY sent -> a LISTENing connection wakes.

    (instant COMMIT was sent, latency) in ns per event, both on CLOCK_MONOTONIC. The
    instant is taken before ``commit()``, as on the library side: the listener may
    wake before ``commit()`` has returned to the producer, which made latencies
    measured from the return negative."""
    from measure import paced

    committed = [0] * count
    woke = [0] * count
    listening = threading.Event()

    def listen() -> None:
        with database.connect(autocommit=True) as conn:
            conn.execute("LISTEN bench_outbox")
            listening.set()
            for note in conn.notifies(stop_after=count, timeout=60):
                woke[int(note.payload)] = time.monotonic_ns()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    listening.wait()
    with database.connect() as conn:

        def produce(i: int) -> None:
            conn.execute(
                f"INSERT INTO raw.outbox ({OUTBOX_COLUMNS}) VALUES {OUTBOX_VALUES}",
                outbox_params("BENCH_RECORDED", "bench", i),
            )
            conn.execute("SELECT pg_notify('bench_outbox', %s)", (str(i),))
            committed[i] = time.monotonic_ns()
            conn.commit()

        paced(count, per_second, produce)
    listener.join()
    if not all(woke):
        raise RuntimeError("raw listener missed notifications")
    return [(c, w - c) for w, c in zip(woke, committed, strict=True)]


def _hold_a_session_lock(conninfo: str) -> None:
    """A child process: take a session-level advisory lock, say so, and wait to be killed."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(4242, 1)")
        print("locked", flush=True)
        threading.Event().wait()


def lock_release_after_kill(database: BenchDatabase, rounds: int) -> list[float]:
    """Benchmark 8 baseline: SIGKILL of a process holding a session advisory lock -> another
    connection, trying every millisecond, holds it (seconds): the server's own floor."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import baselines;"
        " baselines._hold_a_session_lock(sys.argv[2])"
    )
    folder = str(Path(__file__).parent)
    times = []
    with database.connect(autocommit=True) as conn:
        for _ in range(rounds):
            command = [sys.executable, "-c", code, folder, database.conninfo]
            with subprocess.Popen(command, stdout=subprocess.PIPE) as holder:
                assert holder.stdout is not None
                holder.stdout.readline()
                killed = time.monotonic()
                holder.send_signal(signal.SIGKILL)
            try_lock = "SELECT pg_try_advisory_lock(4242, 1)"
            while conn.execute(try_lock).fetchone() != (True,):
                time.sleep(0.001)
            times.append(time.monotonic() - killed)
            conn.execute("SELECT pg_advisory_unlock(4242, 1)")
    return times
