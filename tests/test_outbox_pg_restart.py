"""The relay rides through PostgreSQL going away: a restart, and a 10 s stop during which
connections are refused. Both a ``RelayThread`` and the CLI relay (``signal-mgmt relay``).

Runs on a cluster of its own (``pg_cluster.PgCluster``): the shared server is never
restarted. A writer keeps emitting through the faults (re-trying a failed transaction with
the same events: ``emit`` is idempotent), so events are written before, during and after.
Afterwards: every committed event was published, nothing is DEAD, and each key's first
deliveries follow the writer's commit order.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from outbox_support import tick
from pg_cluster import PgCluster
from signal_mgmt.errors import TransientStorageError
from signal_mgmt.market.clock import SystemClock
from signal_mgmt.models import OutboxRow
from signal_mgmt.outbox.emit import emit
from signal_mgmt.outbox.publishers import InMemoryPublisher
from signal_mgmt.outbox.relay import OutboxRelay
from signal_mgmt.outbox.thread import RelayThread
from signal_mgmt.storage.db import make_engine, transaction
from signal_mgmt.storage.migrations import upgrade

pytestmark = pytest.mark.slow

SIGNAL_MGMT = str(Path(sys.executable).parent / "signal-mgmt")
OUTAGE_SECONDS = 10.0
KEYS = ("a", "b", "c")
PATIENCE = 60.0  # turns a hang into a failure; never reached when things work


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    with PgCluster.started() as started:
        yield started


@pytest.fixture
def database(cluster: PgCluster) -> str:
    url = cluster.create_database(f"relay_{uuid.uuid4().hex[:8]}")
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


class Writer:
    """Emits one event per transaction, keys round-robin, until stopped; retries a
    failed transaction with the same event until it commits."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.committed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(PATIENCE)
        self.engine.dispose()

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            try:
                with transaction(self.engine) as conn:
                    emit(conn, [tick(n, KEYS[n % len(KEYS)])], SystemClock())
            except TransientStorageError:
                time.sleep(0.05)  # the server is away: the same event again
                continue
            n += 1
            self.committed = n
            time.sleep(0.01)

    def wait_for(self, count: int) -> None:
        wait(lambda: self.committed >= count, f"writer stuck below {count}")


def wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def through_a_restart_and_an_outage(cluster: PgCluster, writer: Writer) -> None:
    """Write, restart the server, write, stop it for OUTAGE_SECONDS, write."""
    writer.wait_for(20)
    cluster.restart()
    writer.wait_for(writer.committed + 20)
    cluster.stop()
    time.sleep(OUTAGE_SECONDS)  # the outage itself: connections are refused meanwhile
    cluster.start()
    writer.wait_for(writer.committed + 20)


def outbox_statuses(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status))
            return dict(rows.tuples().all())
    finally:
        engine.dispose()


def assert_first_deliveries_in_commit_order(numbers: list[int], total: int) -> None:
    firsts = list(dict.fromkeys(numbers))
    assert sorted(firsts) == list(range(total))
    for key in range(len(KEYS)):
        of_key = [n for n in firsts if n % len(KEYS) == key]
        assert of_key == sorted(of_key), f"key {KEYS[key]} reordered"


def test_a_relay_thread_rides_through_a_restart_and_an_outage(
    cluster: PgCluster, database: str
) -> None:
    engine = make_engine(database)
    publisher = InMemoryPublisher()
    relay = OutboxRelay(engine, publisher, batch_size=50)
    thread = RelayThread(relay, poll_interval=0.2).start()
    try:
        with Writer(database) as writer:
            through_a_restart_and_an_outage(cluster, writer)
        total = writer.committed  # the writer has stopped
        wait(lambda: outbox_statuses(database).get("PUBLISHED", 0) >= total, "not all published")
        assert thread.health().running
    finally:
        thread.stop()  # re-raises a crash of the thread
        engine.dispose()
    assert outbox_statuses(database) == {"PUBLISHED": total}
    assert_first_deliveries_in_commit_order([m.payload["n"] for m in publisher.messages], total)


def test_the_cli_relay_rides_through_a_restart_and_an_outage(
    cluster: PgCluster, database: str, tmp_path: Path
) -> None:
    sink = tmp_path / "events.jsonl"
    log = tmp_path / "relay.log"
    command = [
        SIGNAL_MGMT, "relay", "--database-url", database, "--publisher", f"jsonl:{sink}",
        "--poll-interval", "0.2", "--batch-size", "50",
    ]  # fmt: skip
    with log.open("wb") as stderr:
        relay = subprocess.Popen(command, stderr=stderr)
    try:
        with Writer(database) as writer:
            through_a_restart_and_an_outage(cluster, writer)
        total = writer.committed  # the writer has stopped
        wait(lambda: outbox_statuses(database).get("PUBLISHED", 0) >= total, "not all published")
        assert relay.poll() is None, log.read_text()  # still running
    finally:
        relay.send_signal(signal.SIGTERM)
        returncode = relay.wait(timeout=PATIENCE)
    assert returncode == 0, log.read_text()
    assert outbox_statuses(database) == {"PUBLISHED": total}
    lines = sink.read_text().splitlines()
    assert_first_deliveries_in_commit_order([json.loads(x)["payload"]["n"] for x in lines], total)
