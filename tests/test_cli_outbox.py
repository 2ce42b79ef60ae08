"""The command line: outbox operations, and one-line errors with exit 2 that write nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from outbox_support import emit_ticks, event_ids_by_n, statuses
from signal_mgmt.cli import app
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.outbox.publishers import InMemoryPublisher
from signal_mgmt.outbox.relay import OutboxRelay

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def now_clock() -> ManualClock:
    """The CLI runs on the system clock: emit with today's time."""
    return ManualClock(datetime.now(UTC))


def kill_first_event(engine: Engine, clock: ManualClock) -> None:
    publisher = InMemoryPublisher()
    publisher.fail_next(1, transient=False)
    relay = OutboxRelay(engine, publisher, clock=clock, batch_size=1)
    while relay.run_once():
        pass


def test_migrate_is_idempotent_and_status_reports_counts(
    engine: Engine, database_url: str, now_clock: ManualClock
) -> None:
    assert run("migrate", "--database-url", database_url)[0] == 0
    emit_ticks(engine, now_clock, [1, 2])
    code, out, _ = run("outbox", "status", "--json", "--database-url", database_url)
    assert code == 0
    report = json.loads(out)
    assert (report["pending"], report["published"], report["dead"]) == (2, 0, 0)
    assert report["oldest_pending_age_seconds"] >= 0
    code, out, _ = run("outbox", "status", "--database-url", database_url)
    assert code == 0
    table: dict[str, str] = {}
    for line in out.splitlines():
        name, value = line.split()
        table[name] = value
    assert table.keys() == report.keys()  # one row per counter, as in --json
    assert (table["pending"], table["published"], table["dead"]) == ("2", "0", "0")


def test_retry_dead_inspect_park_unpark_replay(
    engine: Engine, database_url: str, now_clock: ManualClock
) -> None:
    emit_ticks(engine, now_clock, [1], key="a")
    emit_ticks(engine, now_clock, [2], key="b")
    kill_first_event(engine, now_clock)
    ids = event_ids_by_n(engine)
    assert statuses(engine) == {1: "DEAD", 2: "PUBLISHED"}

    code, out, _ = run("outbox", "inspect", "--json", "--key", "a", "--database-url", database_url)
    assert code == 0
    listed = [json.loads(line) for line in out.splitlines()]
    assert [(e["event_id"], e["status"]) for e in listed] == [(str(ids[1]), "DEAD")]
    assert run("outbox", "inspect", "--key", "c", "--database-url", database_url)[1] == ""

    db = ("--database-url", database_url)
    assert run("outbox", "park", "--event-id", str(ids[1]), *db)[0] == 0
    assert statuses(engine)[1] == "PARKED"
    assert run("outbox", "unpark", "--event-id", str(ids[1]), *db)[0] == 0
    assert statuses(engine)[1] == "PENDING"
    assert run("outbox", "park", "--event-id", str(ids[1]), *db)[0] == 0
    assert run("outbox", "retry-dead", *db)[1].startswith("0 event(s)")
    assert run("outbox", "replay", "--event-id", str(ids[2]), *db)[0] == 0
    assert statuses(engine) == {1: "PARKED", 2: "PENDING"}


def test_retry_dead_one_event_and_purge(
    engine: Engine, database_url: str, now_clock: ManualClock
) -> None:
    emit_ticks(engine, now_clock, [1], key="a")
    kill_first_event(engine, now_clock)
    event_id = str(event_ids_by_n(engine)[1])
    code, out, _ = run(
        "outbox", "retry-dead", "--event-id", event_id, "--database-url", database_url
    )
    assert (code, out.strip()) == (0, "1 event(s) back to PENDING")
    assert statuses(engine) == {1: "PENDING"}
    code, out, _ = run("outbox", "purge", "--older-than", "1h", "--database-url", database_url)
    assert (code, out.strip()) == (0, "0 published event(s) deleted")
    assert statuses(engine) == {1: "PENDING"}


BAD_INPUT = [
    ("outbox", "purge", "--older-than", "7 days"),
    ("outbox", "purge", "--older-than", "0h"),
    ("outbox", "purge", "--older-than", "1d", "--batch-size", "0"),
    ("outbox", "retry-dead", "--event-id", "not-a-uuid"),
    ("outbox", "retry-dead", "--event-id", "00000000-0000-0000-0000-000000000000"),
    ("outbox", "park", "--event-id", "00000000-0000-0000-0000-000000000000"),
    ("outbox", "replay", "--event-id", "x"),
    ("outbox", "inspect", "--status", "LOST"),
    ("outbox", "inspect", "--older-than", "soon"),
    ("relay", "--publisher", "kafka://broker:9092"),
    ("relay", "--publisher", "jsonl:"),
    ("relay", "--lease", "forever"),
    ("relay", "--poll-interval", "-1"),
    ("outbox", "purge", "--older-than", "99999999999w"),
    ("outbox", "inspect", "--older-than", "99999999999w"),
    ("relay", "--lease", "99999999999w"),
    ("outbox", "purge", "--older-than", "1d", "--batch-size", str(2**64)),
    ("outbox", "inspect", "--limit", str(2**64)),
    ("relay", "--batch-size", str(2**64)),
    ("relay", "--metrics-port", "99999"),
    ("relay", "--publisher", "jsonl:/no/such/dir/e.jsonl"),
]


@pytest.mark.parametrize("args", BAD_INPUT, ids=" ".join)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    engine: Engine, database_url: str, now_clock: ManualClock, args: tuple[str, ...]
) -> None:
    emit_ticks(engine, now_clock, [1, 2], key="a")
    kill_first_event(engine, now_clock)
    before = statuses(engine)
    code, out, err = run(*args, "--database-url", database_url)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ")
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert statuses(engine) == before


@pytest.mark.parametrize("url", ["mysql://localhost/x", "not a url", "postgresql+nodriver://x/y"])
def test_bad_database_url_is_exit_2(url: str) -> None:
    code, _, err = run("outbox", "status", "--database-url", url)
    assert code == 2
    assert err.startswith("error: ")
    assert "Traceback" not in err


def test_status_on_a_missing_sqlite_file_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    code, _, err = run("outbox", "status", "--database-url", f"sqlite:///{path}")
    assert code == 2
    assert "signal-mgmt migrate" in err
    assert not path.exists()


def test_relay_command_drains_then_stops_cleanly_on_sigterm(
    engine: Engine, database_url: str, now_clock: ManualClock, tmp_path: Path
) -> None:
    emit_ticks(engine, now_clock, range(50), key="a")
    sink, log = tmp_path / "out.jsonl", tmp_path / "relay.log"
    command = [
        str(Path(sys.executable).parent / "signal-mgmt"), "relay", "--database-url", database_url,
        "--publisher", f"jsonl:{sink}", "--poll-interval", "0.05", "--batch-size", "7",
    ]  # fmt: skip
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, stderr=stderr)
    try:
        deadline = time.monotonic() + 60  # turns a hang into a failure; never a timing check
        while set(statuses(engine).values()) != {"PUBLISHED"}:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        while b"relay: running" not in log.read_bytes():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    assert code == 0, log.read_text()
    assert [json.loads(line)["payload"]["n"] for line in sink.read_text().splitlines()] == list(
        range(50)
    )
