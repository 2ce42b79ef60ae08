"""Each bad input found by generated inputs is a typed error that writes nothing, on both backends.

One test per finding of issue 13 ("every bad input refused"); the CLI's findings
are rows of ``test_cli_outbox.BAD_INPUT`` and the demo's are at the end here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from input_support import Desk, make_desk, table_counts
from signal_mgmt.cli import app
from signal_mgmt.entry.coordinator import EntryCoordinator
from signal_mgmt.entry.qualification import EntryQualificationService
from signal_mgmt.errors import ConfigError, InvalidInputError, SignalMgmtError
from signal_mgmt.execution.exit_dispatcher import ExitIntentDispatcher
from signal_mgmt.execution.exit_reconciler import Reconciler
from signal_mgmt.execution.simulated import SimulatedBroker
from signal_mgmt.exit.candidate import ExitCandidate
from signal_mgmt.exit.detector import ExitDetector
from signal_mgmt.exit.monitor import ExitMonitor
from signal_mgmt.exit.service import ExitIntentService
from signal_mgmt.exit.settings import ExitSettings, load_exit_settings
from signal_mgmt.exit.store import load_open_trades
from signal_mgmt.market.calendar import nse_calendar
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import ExitReason, Instrument, UserBroker
from signal_mgmt.outbox.emit import emit
from signal_mgmt.outbox.events import Event, EventPayload
from signal_mgmt.outbox.inbox import Inbox
from signal_mgmt.outbox.publishers import InMemoryPublisher
from signal_mgmt.outbox.relay import OutboxRelay
from signal_mgmt.outbox.thread import RelayThread
from signal_mgmt.reference import InstrumentSpec
from signal_mgmt.settings import load_settings
from signal_mgmt.tms.close import TradeCloser
from signal_mgmt.tms.open import TradeOpener

HUGE_ID = 2**63
FAR_FUTURE = datetime.max.replace(tzinfo=UTC)
FAR_PAST = datetime.min.replace(tzinfo=timezone(timedelta(hours=5)))


class Note(EventPayload):
    text: str = ""
    number: float = 0.0


def note_event(**overrides: Any) -> Event[Note]:
    values: dict[str, Any] = {
        "event_type": "NOTE",
        "aggregate_type": "note",
        "aggregate_id": "1",
        "idempotency_key": "note-1",
        "payload": Note(),
        **overrides,
    }
    return Event[Note](**values)


@pytest.fixture
def desk(engine: Engine, clock: ManualClock) -> Desk:
    return make_desk(engine, clock)


def refused(engine: Engine, action: Callable[[], object], error: type[Exception]) -> None:
    """``action`` raises ``error`` (a SignalMgmtError) and no table gains or loses a row."""
    assert issubclass(error, SignalMgmtError)
    before = table_counts(engine)
    with pytest.raises(error):
        action()
    assert table_counts(engine) == before


# --------------------------------------------------------------------------- candidates


@pytest.mark.parametrize(
    "overrides",
    [
        {"effective_ceiling": 1e30},  # was decimal.InvalidOperation at quantize
        {"effective_floor": Decimal("1E+14"), "effective_ceiling": Decimal("1E+15")},
        {"detected_at": FAR_FUTURE},  # was OverflowError
        {"detected_at": FAR_PAST},
        {"symbol": "IN\x00FY"},
        {"confluence_type": "VWAP\x00"},
        {"metadata": {"score": float("nan")}},  # was stored as invalid JSON NaN on SQLite
        {"metadata": {"score": float("inf")}},
        {"metadata": {"note": "a\x00b"}},
        {"metadata": {"\x00": 1}},
    ],
    ids=repr,
)
def test_a_non_storable_signal_candidate_is_refused(
    engine: Engine, desk: Desk, overrides: dict[str, Any]
) -> None:
    refused(
        engine,
        lambda: desk.world.signals.publish(desk.world.candidate(**overrides)),
        InvalidInputError,
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"detected_at": FAR_FUTURE},
        {"detected_at": datetime(1800, 1, 1, tzinfo=UTC)},
        {"trade_id": HUGE_ID},
        {"price": Decimal("94.9500001")},  # finer than the money column
        {"trigger_level": Decimal("1E-9")},
    ],
    ids=repr,
)
def test_a_non_storable_exit_candidate_is_refused(overrides: dict[str, Any]) -> None:
    values: dict[str, Any] = {
        "trade_id": 1,
        "reason": ExitReason.STOP_LOSS,
        "price": Decimal("94.95"),
        "detected_at": datetime(2026, 11, 25, 4, tzinfo=UTC),
        **overrides,
    }
    with pytest.raises(InvalidInputError):
        ExitCandidate(**values)


# --------------------------------------------------------------------------- events, inbox


@pytest.mark.parametrize(
    "overrides",
    [
        {"payload": {"text": "a dict"}},  # was a raw PydanticUserError / AttributeError
        {"available_at": FAR_FUTURE},  # was a StatementError
        {"available_at": FAR_PAST},
        {"payload": Note(number=float("nan"))},  # was NaN in the SQLite outbox
        {"payload": Note(number=float("-inf"))},
        {"payload": Note(text="\x00")},  # was a driver error on PostgreSQL
        {"headers": {"trace": "\x00"}},
        {"aggregate_id": "a\x00"},
    ],
    ids=repr,
)
def test_a_non_storable_event_is_refused_before_the_outbox(
    engine: Engine, clock: ManualClock, overrides: dict[str, Any]
) -> None:
    def write() -> None:
        with engine.begin() as conn:
            emit(conn, note_event(**overrides), clock)

    refused(engine, write, InvalidInputError)


@pytest.mark.parametrize("cutoff", [FAR_FUTURE, FAR_PAST, datetime(2026, 1, 1)], ids=repr)  # noqa: DTZ001
def test_inbox_forget_before_a_non_storable_cutoff_is_refused(
    engine: Engine, clock: ManualClock, cutoff: datetime
) -> None:
    inbox = Inbox(engine, "billing", clock)
    inbox.handle("6f1c2b5e-8d2a-5b7e-9c3f-4a1e0d9b7c21", lambda conn: None)
    refused(engine, lambda: inbox.forget_before(cutoff), InvalidInputError)


@pytest.mark.parametrize("consumer", ["bill\x00ing", "", " ", "x" * 101, 7])
def test_inbox_consumer_must_be_a_storable_name(engine: Engine, consumer: Any) -> None:
    refused(engine, lambda: Inbox(engine, consumer).seen(note_event().event_id), InvalidInputError)


# --------------------------------------------------------------------------- reference


@pytest.mark.parametrize("tick", [Decimal("0.0078125"), 1e-9, "0.0000001"])
def test_a_tick_finer_than_the_money_column_is_refused(
    engine: Engine, desk: Desk, tick: Any
) -> None:
    """PostgreSQL stored 0.0078125 as 0.007813 and 1e-9 as 0 while SQLite kept them."""

    def add() -> None:
        desk.world.admin.add_instruments([InstrumentSpec(symbol="FINE", tick_size=tick)])

    refused(engine, add, InvalidInputError)


def test_the_finest_tick_the_column_holds_round_trips_on_both_backends(
    engine: Engine, desk: Desk
) -> None:
    desk.world.admin.add_instruments([InstrumentSpec(symbol="FINE", tick_size="0.000001")])
    with engine.connect() as conn:
        stored = conn.execute(select(Instrument.tick_size).where(Instrument.symbol == "FINE"))
        assert stored.scalar_one() == Decimal("0.000001")


def test_available_capital_as_a_float_is_taken_as_its_decimal(engine: Engine, desk: Desk) -> None:
    """Was AttributeError ('float' has no is_finite)."""
    user_broker = desk.world.user_brokers[0]
    desk.world.admin.set_broker_state(user_broker, available_capital=0.0)  # type: ignore[arg-type]
    with engine.connect() as conn:
        capital = conn.execute(
            select(UserBroker.available_capital).where(UserBroker.id == user_broker)
        )
        assert capital.scalar_one() == 0


@pytest.mark.parametrize(
    "capital", [float("nan"), float("inf"), -1, Decimal("1E+14"), Decimal("0.0000001"), True]
)
def test_bad_available_capital_is_refused(engine: Engine, desk: Desk, capital: Any) -> None:
    user_broker = desk.world.user_brokers[0]
    refused(
        engine,
        lambda: desk.world.admin.set_broker_state(user_broker, available_capital=capital),
        InvalidInputError,
    )


# --------------------------------------------------------------------------- ids and limits


def id_calls(engine: Engine, clock: ManualClock, desk: Desk) -> dict[str, Callable[[int], Any]]:
    broker = SimulatedBroker()
    qualification = EntryQualificationService(engine, clock, nse_calendar())
    detector = ExitDetector(ExitSettings().condition(nse_calendar()))
    monitor = ExitMonitor(detector, ExitIntentService(engine, clock, nse_calendar()))
    return {
        "qualify": qualification.qualify,
        "open": TradeOpener(engine, clock, broker).open,
        "reconcile": Reconciler(engine, broker, clock).reconcile,
        "close_for_exit": TradeCloser(engine, clock).close_for_exit,
        "subscribe": desk.world.admin.subscribe,
        "set_broker_state": lambda i: desk.world.admin.set_broker_state(i, enabled=False),
        "track": monitor.track,
        "load_open_trades": lambda i: load_open_trades(engine, trade_ids=[i]),
        "exit_candidate": lambda i: ExitCandidate(
            trade_id=i, reason=ExitReason.MANUAL, price=Decimal(1), detected_at=clock.now()
        ),
    }


@pytest.mark.parametrize("bad_id", [HUGE_ID, 2**64, 0, -1, True])
@pytest.mark.parametrize(
    "api",
    [
        "qualify",
        "open",
        "reconcile",
        "close_for_exit",
        "subscribe",
        "set_broker_state",
        "track",
        "load_open_trades",
        "exit_candidate",
    ],
)
def test_an_id_outside_64_bits_is_refused(
    engine: Engine, clock: ManualClock, desk: Desk, api: str, bad_id: int
) -> None:
    """Was OverflowError on SQLite and a StorageError on PostgreSQL."""
    call = id_calls(engine, clock, desk)[api]
    refused(engine, lambda: call(bad_id), InvalidInputError)


@pytest.mark.parametrize("limit", ["", float("nan"), -1, 0, 1.5, 2**64, None])
def test_qualify_pending_limit_must_be_a_positive_int(
    engine: Engine, clock: ManualClock, desk: Desk, limit: Any
) -> None:
    """'' and NaN raised ValueError; -1 ran unbounded on SQLite and failed on PostgreSQL."""
    service = EntryQualificationService(engine, clock, nse_calendar())
    refused(engine, lambda: service.qualify_pending(limit=limit), InvalidInputError)


@pytest.mark.parametrize("batch_size", ["50", 1.5, 0, 2**64, None])
@pytest.mark.parametrize("worker", [Reconciler, ExitIntentDispatcher])
def test_batch_size_must_be_a_positive_int(
    engine: Engine, clock: ManualClock, worker: Any, batch_size: Any
) -> None:
    with pytest.raises(InvalidInputError):
        worker(engine, SimulatedBroker(), clock, batch_size=batch_size)


@pytest.mark.parametrize("lanes", ["4", 1.5, 0, None])
def test_coordinator_lanes_must_be_a_positive_int(
    engine: Engine, clock: ManualClock, desk: Desk, lanes: Any
) -> None:
    qualification = EntryQualificationService(engine, clock, nse_calendar())
    with pytest.raises(InvalidInputError):
        EntryCoordinator(desk.world.signals, qualification, lanes=lanes)


@pytest.mark.parametrize(
    "options", [{"batch_size": "500"}, {"batch_size": 2**64}, {"max_attempts": 2.5}], ids=repr
)
def test_relay_counts_must_be_positive_ints(engine: Engine, options: dict[str, Any]) -> None:
    """'500' was a TypeError; 2**64 an OverflowError on SQLite at the first claim."""
    with pytest.raises(InvalidInputError):
        OutboxRelay(engine, InMemoryPublisher(), **options)


@pytest.mark.parametrize("poll_interval", ["1", None])
def test_relay_thread_poll_interval_must_be_a_number(engine: Engine, poll_interval: Any) -> None:
    with pytest.raises(InvalidInputError):
        RelayThread(OutboxRelay(engine, InMemoryPublisher()), poll_interval=poll_interval)


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "overrides",
    [
        {"cooldown": timedelta(seconds=-1)},  # was a raw pydantic ValidationError
        {"cooldown": float("inf")},
        {"reemit_interval": 1e20},
        {"max_holding": "nan"},
        {"trailing_distance": Decimal("NaN")},
        {"trailing_distance": 1e30},
    ],
    ids=repr,
)
def test_exit_settings_built_directly_with_bad_values_is_a_config_error(
    overrides: dict[str, Any],
) -> None:
    with pytest.raises(ConfigError):
        ExitSettings(**overrides)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SIGNAL_MGMT_EXIT_COOLDOWN", "inf"),  # was OverflowError
        ("SIGNAL_MGMT_EXIT_COOLDOWN", "1e20"),
        ("SIGNAL_MGMT_EXIT_MAX_HOLDING", "P99999999999D"),
    ],
)
def test_bad_exit_durations_in_the_environment_are_a_config_error(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name.removeprefix("SIGNAL_MGMT_EXIT_").lower()):
        load_exit_settings()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SIGNAL_MGMT_TIMEZONE", "Mars/Base"),  # was accepted
        ("SIGNAL_MGMT_TIMEZONE", "../../etc/passwd"),
        ("SIGNAL_MGMT_RELAY_BACKOFF_INITIAL", "inf"),  # was accepted
        ("SIGNAL_MGMT_RELAY_BACKOFF_MAX", "nan"),
        ("SIGNAL_MGMT_RELAY_MAX_ATTEMPTS", str(2**64)),
    ],
)
def test_bad_library_settings_in_the_environment_are_a_config_error(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name.removeprefix("SIGNAL_MGMT_").lower()):
        load_settings()


# --------------------------------------------------------------------------- the demo

runner = CliRunner()
DAY = "2026-11-25"


def demo(*args: str) -> Any:
    return runner.invoke(app, ["demo", "--no-progress", *args])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "0001-01-01"], "calendar knows the holidays of"),  # was accepted
        (["--date", "9999-12-31"], "calendar knows the holidays of"),
        (["--date", DAY, "--symbols", "39"], "--symbols must be between 1 and"),
        (["--date", DAY, "--users", str(10**9)], "--users must be at least 1 and at most"),
        (["--date", DAY, "--events", "/no/such/dir/e.jsonl"], "does not exist"),
        (["--date", DAY, "--json-summary", "/no/such/dir/s.json"], "does not exist"),
        (["--date", DAY, "--database-url", "mysql://x/y"], "unsupported database"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
def test_demo_checks_every_argument_before_it_creates_a_database(
    tmp_path: Path, args: list[str], message: str
) -> None:
    database = tmp_path / "demo.db"
    result = demo(
        "--database-url", f"sqlite:///{database}", "--events", str(tmp_path / "e.jsonl"), *args
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert not database.exists()


def test_demo_fresh_starts_from_an_empty_database(tmp_path: Path) -> None:
    """Without --fresh a second run is a replay over the first's rows; with it, a new day."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    common = ["--database-url", url, "--date", DAY, "--symbols", "3", "--users", "2"]

    def run(*extra: str) -> dict[str, Any]:
        summary = tmp_path / "summary.json"
        result = demo(
            *common, "--events", str(tmp_path / "e.jsonl"), "--json-summary", str(summary), *extra
        )
        assert result.exit_code == 0, result.output
        loaded: dict[str, Any] = json.loads(summary.read_text())
        return loaded

    first = run()
    replay = run()
    fresh = run("--fresh")
    published = first["this_run"]["events_published"]
    assert published > 0
    assert first["database"]["outbox"]["published"] == published
    assert replay["this_run"]["events_published"] == 0
    assert replay["database"]["outbox"]["published"] == published
    assert fresh["this_run"]["events_published"] == published
    assert fresh["database"] == first["database"]
