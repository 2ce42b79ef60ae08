"""The demo day: invariants hold, a seed repeats, and the command refuses bad flags."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from typer.testing import CliRunner

from conftest import Backend
from signal_mgmt.cli import app
from signal_mgmt.demo.day import DemoConfig, TradingDay
from signal_mgmt.demo.invariants import facts_have_one_published_event
from signal_mgmt.demo.summary import build_summary
from signal_mgmt.models import OutboxRow
from signal_mgmt.settings import load_settings
from signal_mgmt.storage.db import make_engine, transaction

DAY = date(2026, 11, 25)
SMALL_SYMBOLS, SMALL_USERS = 6, 3


@pytest.fixture
def other_database_url(backend: Backend) -> Iterator[str]:
    """A second fresh, migrated database of the same backend as ``database_url``."""
    url = backend.create_database()
    yield url
    backend.drop_database(url)


def run_day(url: str, events: Path, seed: int = 10) -> dict[str, Any]:
    run = TradingDay(
        DemoConfig(
            day=DAY,
            settings=load_settings(database_url=url),
            events_path=events,
            seed=seed,
            symbols=SMALL_SYMBOLS,
            users=SMALL_USERS,
        )
    ).run()
    engine = make_engine(url)
    try:
        return build_summary(engine, run)
    finally:
        engine.dispose()


def test_a_seeded_day_holds_every_invariant_and_repeats(
    database_url: str, other_database_url: str, tmp_path: Path
) -> None:
    first = run_day(database_url, tmp_path / "first.jsonl")
    second = run_day(other_database_url, tmp_path / "second.jsonl")

    assert first["invariants_hold"], first["invariants"]
    assert all(check["ok"] for check in first["invariants"])
    assert first == second
    # the day did exercise the library: trades, faults, a restart
    stored, this_run = first["database"], first["this_run"]
    assert stored["signals"] > 0
    assert stored["trades"]["closed"] > 0
    assert stored["trades"]["still_open"] == 0
    assert this_run["faults"]["restarts"] == 1
    # seed 10 breaks out right after the restart time: the crash leaves deliveries
    # unqualified, and the new instances' replay qualifies them and opens their trades
    replayed = this_run["faults"]["replayed_after_restart"]
    assert replayed["deliveries_qualified"] > 0
    assert replayed["trades_advanced"] > 0
    assert stored["entry_intents"]["rejected_by_reason"]["BROKER_DISCONNECTED"] > 0
    assert this_run["events_published"] == stored["outbox"]["published"] > 0
    assert this_run["events_emitted_by_type"]["SIGNAL_PUBLISHED"] == stored["signals"]
    lines = (tmp_path / "first.jsonl").read_text().splitlines()
    assert len(lines) == this_run["events_published"]


def test_rerunning_a_day_on_the_same_database_is_a_replay(
    database_url: str, tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    first = run_day(database_url, events)
    again = run_day(database_url, events)

    assert again["invariants_hold"], again["invariants"]
    assert again["this_run"]["events_published"] == 0
    assert again["database"]["outbox"] == first["database"]["outbox"]
    for section in ("signals", "deliveries", "entry_intents", "trades", "pnl"):
        assert again["database"][section] == first["database"][section]


def test_a_fact_without_its_event_fails_the_check(database_url: str, tmp_path: Path) -> None:
    run_day(database_url, tmp_path / "events.jsonl")
    engine = make_engine(database_url)
    try:
        with transaction(engine) as conn:
            assert facts_have_one_published_event(conn).ok
            victim = conn.execute(
                select(OutboxRow.id).where(OutboxRow.event_type == "TRADE_CLOSED").limit(1)
            ).scalar_one()
            conn.execute(delete(OutboxRow).where(OutboxRow.id == victim))
        with transaction(engine) as conn:
            check = facts_have_one_published_event(conn)
    finally:
        engine.dispose()
    assert not check.ok
    assert "TRADE_CLOSED: 1 without event" in check.detail


runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(app, ["demo", "--no-progress", *args])


def test_command_runs_a_day_and_writes_the_json_summary(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    result = invoke(
        "--database-url",
        f"sqlite:///{tmp_path / 'demo.db'}",
        "--events",
        str(tmp_path / "events.jsonl"),
        "--json-summary",
        str(summary_path),
        "--date",
        DAY.isoformat(),
        "--symbols",
        "4",
        "--users",
        "2",
    )
    assert result.exit_code == 0, result.output
    assert "Invariants" in result.output
    summary = json.loads(summary_path.read_text())
    assert summary["invariants_hold"] is True
    assert summary["run"] == {"date": "2026-11-25", "seed": 7, "symbols": 4, "users": 2}
    assert summary["this_run"]["ticks"] > 0
    assert "This run" in result.output
    assert "In the database: trading day 2026-11-25" in result.output


def test_command_exits_non_zero_when_an_invariant_fails(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    common = ["--database-url", url, "--events", str(tmp_path / "e.jsonl"), "--date", "2026-11-25"]
    assert invoke(*common, "--symbols", "4", "--users", "2").exit_code == 0
    engine = make_engine(url)
    try:
        with transaction(engine) as conn:
            conn.execute(delete(OutboxRow).where(OutboxRow.event_type == "SIGNAL_PUBLISHED"))
    finally:
        engine.dispose()

    result = invoke(*common, "--symbols", "4", "--users", "2")
    assert result.exit_code == 1
    assert "an invariant failed" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "2026-11-24"], "not an NSE trading day (Guru Nanak Jayanti)"),
        (["--date", "2026-11-28"], "not an NSE trading day (weekend)"),
        (["--date", "25/11/2026"], "expected YYYY-MM-DD"),
        (["--date", "2026-11-25", "--symbols", "0"], "--symbols must be between 1 and"),
        (["--date", "2026-11-25", "--users", "0"], "--users must be at least 1"),
        (["--json-summary", "/no/such/dir/s.json"], "--json-summary: target folder /no/such/dir"),
        (["--events", "/no/such/dir/e.jsonl"], "--events: target folder /no/such/dir"),
        (["--events", "/dev/full"], "--events: /dev/full is not a regular file"),
        (["--database-url", "sqlite:////no/such/dir/d.db"], "database folder /no/such/dir does"),
    ],
)
def test_bad_flags_are_refused_with_a_clear_message(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = invoke("--database-url", f"sqlite:///{tmp_path / 'demo.db'}", *args)
    assert result.exit_code == 2
    assert message in result.output


def test_unknown_option_is_a_usage_error() -> None:
    result = invoke("--sede", "3")
    assert result.exit_code == 2
    assert "No such option" in result.output
