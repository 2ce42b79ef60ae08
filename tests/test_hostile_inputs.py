"""Generated hostile values against every public entry point that takes data.

NaN, +-inf, huge and negative numbers, naive and out-of-range datetimes,
empty / huge / NUL / unicode strings, unknown ids and enum values: each call
either raises a ``SignalMgmtError`` and leaves every table's row count as it
was, or succeeds and every stored value reads back sane (finite, in range, no
NUL, valid JSON). Every example starts from an emptied database of the test's backend.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from conftest import empty_every_table
from input_support import Desk, make_desk, table_counts
from signal_mgmt.entry.candidate import SignalCandidate
from signal_mgmt.entry.coordinator import EntryCoordinator
from signal_mgmt.entry.qualification import EntryQualificationService
from signal_mgmt.errors import SignalMgmtError
from signal_mgmt.execution.exit_dispatcher import ExitIntentDispatcher
from signal_mgmt.execution.exit_reconciler import Reconciler
from signal_mgmt.execution.simulated import SimulatedBroker
from signal_mgmt.exit.candidate import ExitCandidate, ExitCleared
from signal_mgmt.exit.detector import ExitDetector
from signal_mgmt.exit.monitor import ExitMonitor
from signal_mgmt.exit.service import ExitIntentService
from signal_mgmt.exit.settings import ExitSettings
from signal_mgmt.market.calendar import nse_calendar
from signal_mgmt.market.clock import EARLIEST, LATEST, ManualClock
from signal_mgmt.models import Base
from signal_mgmt.outbox.emit import emit
from signal_mgmt.outbox.events import Event, EventPayload
from signal_mgmt.outbox.inbox import Inbox
from signal_mgmt.reference import InstrumentSpec, UserBrokerSpec
from signal_mgmt.settings import load_settings
from signal_mgmt.tms.close import TradeCloser
from signal_mgmt.tms.open import TradeOpener
from signal_mgmt.validation import MAX_DURATION, MAX_ID, MAX_MONEY

START = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)  # Wednesday 09:30 Asia/Kolkata
EXAMPLES = 15
"""Examples per entry point and backend (each on an emptied database, its own reference rows)."""

NUMBERS = st.one_of(
    st.sampled_from(
        [
            math.nan,
            math.inf,
            -math.inf,
            -1.0,
            0.0,
            1e-9,
            0.0078125,
            1e14,
            1e30,
            5e-324,
            2**63,
            2**64,
            -(2**63) - 1,
            Decimal("NaN"),
            Decimal("-Infinity"),
            Decimal("1E+30"),
            Decimal("1E-9"),
        ]
    ),
    st.floats(),
    st.integers(),
    st.decimals(),
)
ZONES = [None, UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))]
DATETIMES = st.one_of(
    st.sampled_from(
        [
            datetime.max,  # noqa: DTZ901 - naive on purpose
            datetime.min,  # noqa: DTZ901
            datetime.max.replace(tzinfo=UTC),
            datetime.min.replace(tzinfo=timezone(timedelta(hours=5))),
            EARLIEST - timedelta(microseconds=1),
            LATEST,
            START.replace(tzinfo=None),
        ]
    ),
    st.datetimes(timezones=st.sampled_from(ZONES)),
)
TEXT = st.one_of(
    st.sampled_from(["", " ", "\x00", "IN\x00FY", "x" * 100_000, "😀", "INFY", "*", "LONG"]),
    st.text(max_size=40),
)
IDS: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from([0, -1, 1, 2, 3, MAX_ID, MAX_ID + 1, 2**64, True, "1", 1.0, None]),
    st.integers(),
)
ENUMS = st.one_of(st.sampled_from(["LONG", "SHORT", "STOP_LOSS", "MANUAL", "long", ""]), TEXT)
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.floats(), st.integers(), TEXT),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
ANYTHING = st.one_of(NUMBERS, DATETIMES, TEXT, IDS, JSON)


class Draws:
    """One example's draws. Up front it picks the field that gets a hostile value (of its
    kind, or anything); every other field keeps its good value, so each hostile value
    reaches the check it is meant for. Target -1: every field may be hostile at once."""

    MAX_FIELDS = 8

    def __init__(self, data: st.DataObject) -> None:
        self._data = data
        self._target = data.draw(st.integers(-1, self.MAX_FIELDS - 1), label="hostile field")
        self._fields = 0

    def draw(self, strategy: st.SearchStrategy[Any]) -> Any:
        return self._data.draw(strategy)

    def field(self, good: object, hostile: st.SearchStrategy[Any]) -> Any:
        index, self._fields = self._fields, self._fields + 1
        if self._target == -1:
            return self.draw(st.one_of(hostile, st.just(good), ANYTHING))
        return self.draw(st.one_of(hostile, ANYTHING)) if index == self._target else good


def field(data: Draws, good: object, hostile: st.SearchStrategy[Any]) -> Any:
    return data.field(good, hostile)


@dataclass
class Context:
    engine: Engine
    clock: ManualClock
    desk: Desk

    @property
    def broker(self) -> SimulatedBroker:
        return SimulatedBroker({"INFY": Decimal(100), "TCS": Decimal(100)})


# --------------------------------------------------------------------------- entry points


def signal_candidate(data: Draws) -> SignalCandidate:
    return SignalCandidate(
        symbol=field(data, "INFY", TEXT),
        direction=field(data, "LONG", ENUMS),
        confluence_type=field(data, "VWAP", TEXT),
        detected_at=field(data, START, DATETIMES),
        effective_floor=field(data, Decimal(99), NUMBERS),
        effective_ceiling=field(data, Decimal(100), NUMBERS),
        metadata=field(data, {}, JSON),
    )


def publish(ctx: Context, data: Draws) -> None:
    ctx.desk.world.signals.publish(signal_candidate(data))


def coordinate(ctx: Context, data: Draws) -> None:
    qualification = EntryQualificationService(ctx.engine, ctx.clock, nse_calendar())
    opener = TradeOpener(ctx.engine, ctx.clock, ctx.broker, sleep=lambda _: None)
    coordinator = EntryCoordinator(ctx.desk.world.signals, qualification, opener)
    try:
        coordinator.process(signal_candidate(data))
    finally:
        coordinator.close()


def qualify(ctx: Context, data: Draws) -> None:
    service = EntryQualificationService(ctx.engine, ctx.clock, nse_calendar())
    if data.draw(st.booleans()):
        service.qualify(data.draw(IDS))
    else:
        service.qualify_pending(limit=field(data, 10, IDS | NUMBERS))


def exit_service(ctx: Context) -> ExitIntentService:
    return ExitIntentService(ctx.engine, ctx.clock, nse_calendar())


def exit_detected(ctx: Context, data: Draws) -> None:
    candidate = ExitCandidate(
        trade_id=field(data, ctx.desk.trade_id, IDS),
        reason=field(data, "STOP_LOSS", ENUMS),
        price=field(data, Decimal("94.9"), NUMBERS),
        detected_at=field(data, START, DATETIMES),
        trigger_level=field(data, None, NUMBERS),
    )
    exit_service(ctx).on_exit_detected(candidate)


def exit_cleared(ctx: Context, data: Draws) -> None:
    cleared = ExitCleared(
        trade_id=field(data, ctx.desk.trade_id, IDS),
        reason=field(data, "STOP_LOSS", ENUMS),
        cleared_at=field(data, START, DATETIMES),
    )
    exit_service(ctx).on_exit_cleared(cleared)


def manual_exit(ctx: Context, data: Draws) -> None:
    monitor = ExitMonitor(ExitDetector(ExitSettings().condition(nse_calendar())), exit_service(ctx))
    monitor.start()
    monitor.request_manual_exit(
        field(data, ctx.desk.trade_id, IDS),
        field(data, START, DATETIMES),
        field(data, None, NUMBERS),
    )


def tick(ctx: Context, data: Draws) -> None:
    monitor = ExitMonitor(ExitDetector(ExitSettings().condition(nse_calendar())), exit_service(ctx))
    monitor.start()
    monitor.on_tick(
        field(data, "TCS", TEXT), field(data, Decimal(90), NUMBERS), field(data, START, DATETIMES)
    )


def add_instrument(ctx: Context, data: Draws) -> None:
    spec = InstrumentSpec(
        symbol=field(data, "WIPRO", TEXT),
        tick_size=field(data, Decimal("0.05"), NUMBERS),
        lot_size=field(data, 1, IDS),
        freeze_quantity=field(data, None, IDS),
        exchange=field(data, "NSE", TEXT),
        segment=field(data, "EQ", TEXT),
    )
    ctx.desk.world.admin.add_instruments([spec])


def add_user_broker(ctx: Context, data: Draws) -> None:
    spec = UserBrokerSpec(
        user_id=field(data, "hostile", TEXT),
        broker=field(data, "SIM", TEXT),
        available_capital=field(data, Decimal(1000), NUMBERS),
        sizing_mode=field(data, "FIXED_QUANTITY", ENUMS),
        fixed_quantity=field(data, 1, IDS),
        reward_risk_ratio=field(data, Decimal(2), NUMBERS),
        max_open_trades=field(data, None, IDS),
        max_total_exposure=field(data, None, NUMBERS),
    )
    ctx.desk.world.admin.add_user_broker(spec)


def subscribe(ctx: Context, data: Draws) -> None:
    ctx.desk.world.admin.subscribe(
        field(data, ctx.desk.world.user_brokers[0], IDS),
        symbol=field(data, "TCS", TEXT),
        confluence_type=field(data, "*", TEXT),
    )


def set_broker_state(ctx: Context, data: Draws) -> None:
    ctx.desk.world.admin.set_broker_state(
        field(data, ctx.desk.world.user_brokers[0], IDS),
        enabled=field(data, None, st.sampled_from([True, False, 1, "yes"])),
        connected=field(data, None, st.sampled_from([True, False, 0, "no"])),
        available_capital=field(data, None, NUMBERS),
    )


class Payload(EventPayload):
    value: Any = None


def emit_event(ctx: Context, data: Draws) -> None:
    event = Event[Payload](
        event_type=field(data, "HOSTILE", TEXT),
        aggregate_type=field(data, "test", TEXT),
        aggregate_id=field(data, "1", TEXT),
        idempotency_key=field(data, "k", TEXT),
        payload=field(data, Payload(value=data.draw(JSON)), ANYTHING),
        partition_key=field(data, None, TEXT),
        headers=field(data, {}, st.dictionaries(TEXT, TEXT, max_size=2)),
        available_at=field(data, None, DATETIMES),
    )
    with ctx.engine.begin() as conn:
        emit(conn, event, ctx.clock)


def inbox(ctx: Context, data: Draws) -> None:
    box = Inbox(ctx.engine, field(data, "billing", TEXT), ctx.clock)
    if data.draw(st.booleans()):
        event = field(data, "6f1c2b5e-8d2a-5b7e-9c3f-4a1e0d9b7c21", TEXT | IDS)
        box.handle(event, lambda conn: None)
    else:
        box.forget_before(field(data, START, DATETIMES), batch_size=field(data, 100, IDS))


def open_and_close(ctx: Context, data: Draws) -> None:
    opener = TradeOpener(ctx.engine, ctx.clock, ctx.broker, sleep=lambda _: None)
    choice = data.draw(st.sampled_from(["open", "open_pending", "close"]))
    if choice == "open":
        opener.open(data.draw(IDS))
    elif choice == "open_pending":
        opener.open_pending(limit=field(data, 10, IDS | NUMBERS))
    else:
        TradeCloser(ctx.engine, ctx.clock).close_for_exit(data.draw(IDS))


def dispatch_and_reconcile(ctx: Context, data: Draws) -> None:
    batch_size = field(data, 10, IDS | NUMBERS)
    if data.draw(st.booleans()):
        ExitIntentDispatcher(
            ctx.engine, ctx.broker, ctx.clock, batch_size=batch_size, sleep=lambda _: None
        ).dispatch_pending()
    elif data.draw(st.booleans()):
        Reconciler(ctx.engine, ctx.broker, ctx.clock, batch_size=batch_size).reconcile_placed()
    else:
        Reconciler(ctx.engine, ctx.broker, ctx.clock).reconcile(data.draw(IDS))


ENTRY_POINTS: dict[str, Callable[[Context, Draws], None]] = {
    "SignalService.publish": publish,
    "EntryCoordinator.process": coordinate,
    "EntryQualificationService": qualify,
    "ExitIntentService.on_exit_detected": exit_detected,
    "ExitIntentService.on_exit_cleared": exit_cleared,
    "ExitMonitor.request_manual_exit": manual_exit,
    "ExitMonitor.on_tick": tick,
    "ReferenceAdmin.add_instruments": add_instrument,
    "ReferenceAdmin.add_user_broker": add_user_broker,
    "ReferenceAdmin.subscribe": subscribe,
    "ReferenceAdmin.set_broker_state": set_broker_state,
    "emit(Event)": emit_event,
    "Inbox": inbox,
    "TradeOpener/TradeCloser": open_and_close,
    "dispatch/reconcile": dispatch_and_reconcile,
}


# --------------------------------------------------------------------------- sanity


def assert_sane(value: object, where: str) -> None:
    """A value read back from the database: what the library promises to store."""
    if isinstance(value, str):
        assert "\x00" not in value, where
    elif isinstance(value, float):
        assert math.isfinite(value), where
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        assert abs(value) <= MAX_ID, where
    elif isinstance(value, Decimal):
        assert value.is_finite(), where
        assert abs(value) < MAX_MONEY, where
    elif isinstance(value, datetime):
        assert value.tzinfo is not None, where
        assert EARLIEST <= value < LATEST, where
    elif isinstance(value, Mapping):
        for key, item in value.items():
            assert_sane(key, where)
            assert_sane(item, f"{where}.{key}")
    elif isinstance(value, list):
        for item in value:
            assert_sane(item, where)


def assert_stored_values_sane(engine: Engine) -> None:
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for column, value in row._mapping.items():
                    assert_sane(value, f"{table.name}.{column}")


@pytest.mark.parametrize("entry_point", list(ENTRY_POINTS))
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_hostile_input_is_refused_or_stored_sane(
    engine: Engine, entry_point: str, data: st.DataObject
) -> None:
    empty_every_table(engine)  # each example starts from the same empty database
    clock = ManualClock(START)
    ctx = Context(engine, clock, make_desk(engine, clock))
    before = table_counts(engine)  # each entry point makes ONE call that may write
    try:
        ENTRY_POINTS[entry_point](ctx, Draws(data))
    except SignalMgmtError:
        assert table_counts(engine) == before, "a refused call wrote rows"
    else:
        assert_stored_values_sane(engine)


SETTINGS_FIELDS = st.sampled_from(
    [
        "relay_batch_size",
        "relay_poll_interval",
        "relay_max_attempts",
        "relay_backoff_initial",
        "relay_backoff_max",
        "timezone",
        "database_url",
    ]
)
EXIT_SETTINGS_FIELDS = st.sampled_from(
    ["square_off_time", "max_holding", "trailing_distance", "cooldown", "reemit_interval"]
)


@given(name=SETTINGS_FIELDS, value=ANYTHING)
def test_hostile_library_settings_are_a_config_error_or_sane(name: str, value: Any) -> None:
    try:
        built = load_settings(**{name: value})
    except SignalMgmtError:
        return
    for number in (built.relay_poll_interval, built.relay_backoff_initial, built.relay_backoff_max):
        assert math.isfinite(number)
        assert number > 0
    assert 1 <= built.relay_batch_size <= 10_000
    assert built.relay_max_attempts <= 1_000_000


@given(name=EXIT_SETTINGS_FIELDS, value=st.one_of(ANYTHING, st.timedeltas()))
def test_hostile_exit_settings_are_a_config_error_or_sane(name: str, value: Any) -> None:
    try:
        overrides: dict[str, Any] = {name: value}
        built = ExitSettings(**overrides)
    except SignalMgmtError:
        return
    for duration in (built.cooldown, built.reemit_interval, built.max_holding):
        assert duration is None or timedelta(0) <= duration <= MAX_DURATION
    assert built.trailing_distance is None or 0 < built.trailing_distance < MAX_MONEY
    assert START + built.cooldown < LATEST + MAX_DURATION  # arithmetic on it cannot overflow
