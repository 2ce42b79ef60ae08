"""Relay PROCESSES on PostgreSQL (`signal-mgmt relay --publisher jsonl:...`): several at once,
SIGKILLed mid-drain and restarted. No event is lost and each key's first deliveries keep order.

The test waits for progress by polling the database (a condition, not a duration); the
deadline only turns a hang into a failure.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from outbox_support import emit_ticks
from signal_mgmt.market.clock import SystemClock
from signal_mgmt.models import OutboxRow

pytestmark = [pytest.mark.postgres_only, pytest.mark.slow]

SIGNAL_MGMT = str(Path(sys.executable).parent / "signal-mgmt")
DEADLINE = 180.0
KEYS = 24


class Relays:
    def __init__(self, database_url: str, sink: Path) -> None:
        self.database_url = database_url
        self.sink = sink
        self.running: list[subprocess.Popen[bytes]] = []
        self.killed = 0

    def start(self) -> None:
        command = [
            SIGNAL_MGMT, "relay", "--database-url", self.database_url,
            "--publisher", f"jsonl:{self.sink}", "--batch-size", "40",
            "--lease", "2s", "--poll-interval", "0.2",
        ]  # fmt: skip
        log = self.sink.with_name(f"relay-{len(self.running) + self.killed}.log")
        with log.open("wb") as stderr:
            self.running.append(subprocess.Popen(command, stderr=stderr))
        started = time.monotonic()
        while b"relay: running" not in log.read_bytes():  # its SIGTERM handler is installed
            assert time.monotonic() - started < DEADLINE, log.read_text()
            time.sleep(0.02)

    def kill_one(self, rng: random.Random) -> None:
        victim = self.running.pop(rng.randrange(len(self.running)))
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.killed += 1

    def stop_all(self) -> None:
        for process in self.running:
            process.send_signal(signal.SIGTERM)
        for process in self.running:
            assert process.wait(timeout=30) == 0  # a clean stop on SIGTERM
        self.running.clear()


def published(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).where(OutboxRow.status == "PUBLISHED")
        ).scalar_one()


def wait_until(engine: Engine, count: int, started: float) -> None:
    while published(engine) < count:
        assert time.monotonic() - started < DEADLINE, f"stuck below {count} published"
        time.sleep(0.02)


def emit_rounds(engine: Engine, first: int, total: int, rng: random.Random) -> None:
    clock = SystemClock()
    for n in range(first, first + total, 50):
        key = f"key-{rng.randrange(KEYS)}"
        emit_ticks(engine, clock, range(n, min(n + 50, first + total)), key=key)


def check_sink(engine: Engine, sink: Path, total: int) -> None:
    with engine.connect() as conn:
        statuses = set(conn.execute(select(OutboxRow.status)).scalars())
        ids = dict(conn.execute(select(OutboxRow.event_id, OutboxRow.id)).tuples().all())
    assert statuses == {"PUBLISHED"}
    lines = [json.loads(line) for line in sink.read_text().splitlines()]
    first_seen: dict[str, dict[str, object]] = {}
    for line in lines:
        first_seen.setdefault(str(line["event_id"]), line)
    assert len(first_seen) == total == len(ids)  # nothing lost
    last_id: dict[str, int] = {}
    for line in first_seen.values():
        key, row_id = str(line["partition_key"]), int(line["id"])  # type: ignore[call-overload]
        assert row_id > last_id.get(key, 0), f"key {key}: {row_id} after {last_id[key]}"
        last_id[key] = row_id


def test_three_relay_processes_with_random_sigkills(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    rng = random.Random(7)
    sink = tmp_path / "events.jsonl"
    total = 3000
    emit_rounds(engine, 0, total // 2, rng)
    relays = Relays(database_url, sink)
    for _ in range(3):
        relays.start()
    started = time.monotonic()
    try:
        emit_rounds(engine, total // 2, total // 2, rng)  # more arrives while they drain
        for threshold in (400, 900, 1500, 2100):
            wait_until(engine, threshold, started)
            relays.kill_one(rng)
            relays.start()
        wait_until(engine, total, started)
    finally:
        relays.stop_all()
    assert relays.killed == 4
    check_sink(engine, sink, total)


def test_a_killed_relay_restarted_loses_nothing(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    rng = random.Random(11)
    sink = tmp_path / "events.jsonl"
    total = 1500
    emit_rounds(engine, 0, total, rng)
    relays = Relays(database_url, sink)
    relays.start()
    started = time.monotonic()
    try:
        wait_until(engine, total // 3, started)
        relays.kill_one(rng)
        relays.start()
        wait_until(engine, total, started)
    finally:
        relays.stop_all()
    check_sink(engine, sink, total)
