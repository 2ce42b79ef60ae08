"""Exit conditions, brick confirmation and the detector's level index (pure, no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signal_mgmt.errors import InvalidInputError, NotFoundError
from signal_mgmt.exit.bricks import BrickRule
from signal_mgmt.exit.candidate import ExitCandidate
from signal_mgmt.exit.conditions import (
    Crossing,
    ExitCondition,
    OpenTrade,
    StopLoss,
    Target,
    TimeExit,
    TrailingStop,
    Trigger,
    advance_water_mark,
)
from signal_mgmt.exit.detector import ExitDetector
from signal_mgmt.market import nse_calendar
from signal_mgmt.models import Direction, ExitReason

T0 = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)  # 09:30 Asia/Kolkata, a Wednesday
ticks_ = st.integers(min_value=1, max_value=400).map(lambda n: Decimal(n) / 4)


def trade(
    trade_id: int = 1,
    *,
    direction: Direction = Direction.LONG,
    entry: str = "100",
    target: str | None = "110",
    stop: str | None = "95",
    symbol: str = "INFY",
    opened_at: datetime = T0,
) -> OpenTrade:
    return OpenTrade(
        trade_id=trade_id,
        symbol=symbol,
        direction=direction,
        entry_price=Decimal(entry),
        target_price=None if target is None else Decimal(target),
        stop_price=None if stop is None else Decimal(stop),
        opened_at=opened_at,
    )


def all_conditions() -> ExitCondition:
    return Target() | StopLoss() | TrailingStop(Decimal("3"))


@pytest.mark.parametrize(
    ("direction", "price", "expected"),
    [
        (Direction.LONG, "110", {ExitReason.TARGET}),
        (Direction.LONG, "109.95", set()),
        (Direction.LONG, "95", {ExitReason.STOP_LOSS}),
        (Direction.SHORT, "90", {ExitReason.TARGET}),
        (Direction.SHORT, "105", {ExitReason.STOP_LOSS}),
        (Direction.SHORT, "99", set()),
    ],
)
def test_target_and_stop_are_direction_aware(
    direction: Direction, price: str, expected: set[ExitReason]
) -> None:
    target, stop = ("110", "95") if direction is Direction.LONG else ("90", "105")
    t = trade(direction=direction, target=target, stop=stop)
    either = Target() | StopLoss()
    assert [type(member) for member in either.members] == [Target, StopLoss]
    met = either.met(t, Decimal(price), T0, t.entry_price)
    assert met == expected


def test_trailing_stop_follows_the_water_mark() -> None:
    t = trade(stop=None, target=None)
    cond = TrailingStop(Decimal("2"))
    mark = advance_water_mark(Direction.LONG, t.entry_price, Decimal("108"))
    assert mark == Decimal("108")
    assert cond.met(t, Decimal("106.5"), T0, mark) == frozenset()
    assert cond.met(t, Decimal("106"), T0, mark) == {ExitReason.TRAILING_STOP}
    short = trade(direction=Direction.SHORT, stop=None, target=None)
    low = advance_water_mark(Direction.SHORT, short.entry_price, Decimal("90"))
    assert cond.met(short, Decimal("92"), T0, low) == {ExitReason.TRAILING_STOP}


def test_time_exit_squares_off_on_the_trading_day_and_skips_holidays() -> None:
    cal = nse_calendar()
    cond = TimeExit(cal, square_off=time(15, 15))
    deadline = cond.deadline(trade())
    assert deadline == datetime(2026, 11, 25, 9, 45, tzinfo=UTC)  # 15:15 IST
    # Opened after the square-off on Monday 23 Nov; 24 Nov 2026 is a holiday (Guru Nanak).
    late = trade(opened_at=datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
    assert cal.session(date(2026, 11, 24)) is None
    assert cond.deadline(late) == datetime(2026, 11, 25, 9, 45, tzinfo=UTC)
    holding = TimeExit(cal, square_off=None, max_holding=timedelta(minutes=30))
    assert holding.deadline(trade()) == T0 + timedelta(minutes=30)
    both = cond | holding
    assert both.deadline(trade()) == T0 + timedelta(minutes=30)
    assert both.met(trade(), Decimal("100"), T0 + timedelta(minutes=30), Decimal("100")) == {
        ExitReason.TIME
    }


def test_time_exit_in_a_special_session_squares_off_before_its_close() -> None:
    saturday = date(2026, 11, 28)
    cal = nse_calendar().with_special_session(saturday, time(18, 0), time(19, 0), "muhurat")
    cond = TimeExit(cal, square_off=time(15, 15))
    opened = datetime(2026, 11, 28, 12, 40, tzinfo=UTC)  # 18:10 IST
    assert cond.deadline(trade(opened_at=opened)) == datetime(2026, 11, 28, 13, 15, tzinfo=UTC)
    # Friday after the square-off: the next session is Saturday's special one.
    friday_late = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert cond.deadline(trade(opened_at=friday_late)) == datetime(2026, 11, 28, 13, 15, tzinfo=UTC)


def test_bad_condition_parameters_are_typed_errors() -> None:
    with pytest.raises(InvalidInputError):
        TrailingStop(Decimal("0"))
    with pytest.raises(InvalidInputError):
        TimeExit(nse_calendar(), max_holding=timedelta(0))
    with pytest.raises(InvalidInputError):
        TimeExit(nse_calendar(), special_session_lead=timedelta(minutes=-1))
    with pytest.raises(InvalidInputError):
        BrickRule(size=Decimal("-1"), count=2)
    with pytest.raises(InvalidInputError):
        BrickRule(size=Decimal("1"), count=0)


def test_brick_tracker_needs_n_bricks_beyond_the_level() -> None:
    tracker = BrickRule(size=Decimal("1"), count=2).tracker(
        Trigger(Decimal("100"), Crossing.FALLING, ExitReason.STOP_LOSS)
    )
    assert not tracker.update(Decimal("99.5"))
    assert not tracker.update(Decimal("99"))  # one brick
    assert not tracker.update(Decimal("99.8"))
    assert tracker.update(Decimal("98"))  # two bricks
    assert not tracker.update(Decimal("99.5"))  # one brick taken back


@given(
    direction=st.sampled_from(list(Direction)),
    entry=ticks_,
    target=ticks_,
    stop=ticks_,
    path=st.lists(ticks_, min_size=1, max_size=15),
)
def test_mirror_a_short_on_p_behaves_as_a_long_on_minus_p(
    direction: Direction, entry: Decimal, target: Decimal, stop: Decimal, path: list[Decimal]
) -> None:
    other = Direction.SHORT if direction is Direction.LONG else Direction.LONG
    cond = all_conditions()
    a = OpenTrade(1, "X", direction, entry, target, stop, T0)
    b = OpenTrade(1, "X", other, -entry, -target, -stop, T0)
    mark_a, mark_b = entry, -entry
    for price in path:
        mark_a = advance_water_mark(direction, mark_a, price)
        mark_b = advance_water_mark(other, mark_b, -price)
        assert mark_b == -mark_a
        assert cond.met(a, price, T0, mark_a) == cond.met(b, -price, T0, mark_b)


@given(
    direction=st.sampled_from(list(Direction)),
    entry=ticks_,
    target=ticks_,
    stop=ticks_,
    path=st.lists(ticks_, min_size=1, max_size=15),
)
def test_mirror_holds_through_the_detector(
    direction: Direction, entry: Decimal, target: Decimal, stop: Decimal, path: list[Decimal]
) -> None:
    other = Direction.SHORT if direction is Direction.LONG else Direction.LONG
    ceiling = Decimal(200)  # p -> 200 - p keeps prices positive
    rule = {ExitReason.TARGET: BrickRule(Decimal("0.5"), 2)}
    left = ExitDetector(all_conditions(), confirmations=rule, reemit_interval=timedelta(0))
    right = ExitDetector(all_conditions(), confirmations=rule, reemit_interval=timedelta(0))
    left.add_trade(OpenTrade(1, "X", direction, entry, target, stop, T0))
    right.add_trade(OpenTrade(1, "X", other, ceiling - entry, ceiling - target, ceiling - stop, T0))
    for i, price in enumerate(path):
        at = T0 + timedelta(seconds=i)
        a, b = left.on_tick("X", price, at), right.on_tick("X", ceiling - price, at)
        assert sorted(c.reason for c in a.candidates) == sorted(c.reason for c in b.candidates)
        assert sorted(c.reason for c in a.cleared) == sorted(c.reason for c in b.cleared)


trades_ = st.lists(
    st.tuples(
        st.sampled_from(["A", "B"]),
        st.sampled_from(list(Direction)),
        ticks_,
        st.one_of(st.none(), ticks_),
        st.one_of(st.none(), ticks_),
        st.integers(min_value=0, max_value=20),
    ),
    min_size=1,
    max_size=12,
)
ops_ = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.sampled_from(["A", "B"]), ticks_),
        st.tuples(st.just("close"), st.integers(min_value=1, max_value=12), st.just(Decimal(0))),
    ),
    max_size=40,
)


@given(trades=trades_, ops=ops_)
def test_detector_equals_a_naive_scan(
    trades: list[tuple[str, Direction, Decimal, Decimal | None, Decimal | None, int]],
    ops: list[tuple[str, object, Decimal]],
) -> None:
    cond = all_conditions() | TimeExit(
        nse_calendar(), square_off=None, max_holding=timedelta(minutes=10)
    )
    detector = ExitDetector(cond, reemit_interval=timedelta(0))
    open_: dict[int, OpenTrade] = {}
    marks: dict[int, Decimal] = {}
    met_before: dict[int, frozenset[ExitReason]] = {}
    for i, (symbol, direction, entry, target, stop, minutes) in enumerate(trades, start=1):
        t = OpenTrade(i, symbol, direction, entry, target, stop, T0 + timedelta(minutes=minutes))
        open_[i], marks[i], met_before[i] = t, entry, frozenset()
        detector.add_trade(t)
    for step, (kind, arg, price) in enumerate(ops):
        at = T0 + timedelta(minutes=step)
        if kind == "close":
            assert isinstance(arg, int)
            detector.remove_trade(arg)
            open_.pop(arg, None)
            continue
        assert isinstance(arg, str)
        expected: set[tuple[int, ExitReason]] = set()
        expected_cleared: set[tuple[int, ExitReason]] = set()
        for trade_id, t in open_.items():
            if t.symbol != arg:
                continue
            marks[trade_id] = advance_water_mark(t.direction, marks[trade_id], price)
            met = cond.met(t, price, at, marks[trade_id])
            expected |= {(trade_id, r) for r in met}
            expected_cleared |= {(trade_id, r) for r in met_before[trade_id] - met}
            met_before[trade_id] = met
        outcome = detector.on_tick(arg, price, at)
        assert {(c.trade_id, c.reason) for c in outcome.candidates} == expected
        assert {(c.trade_id, c.reason) for c in outcome.cleared} == expected_cleared
        for trade_id in open_:
            assert detector.water_mark(trade_id) == marks[trade_id]


def test_a_tick_touches_only_the_trades_it_crosses() -> None:
    detector = ExitDetector(all_conditions())
    for i in range(1, 1001):
        detector.add_trade(
            trade(trade_id=i, target=str(110 + i), stop=str(Decimal(95) - Decimal(i) / 100))
        )
    quiet = detector.on_tick("INFY", Decimal("100"), T0)  # at the entry: nothing crosses
    assert quiet.touched == 0
    assert quiet.candidates == ()
    hit = detector.on_tick("INFY", Decimal("112"), T0)  # targets 111 and 112 only
    assert {c.trade_id for c in hit.candidates} == {1, 2}
    # Every trailing mark moved: the water-mark index finds them; the hits are 1 and 2.
    assert hit.touched == 1000


def test_a_held_condition_is_repeated_only_after_the_interval_and_clears() -> None:
    detector = ExitDetector(StopLoss(), reemit_interval=timedelta(seconds=60))
    detector.add_trade(trade())
    first = detector.on_tick("INFY", Decimal("94"), T0)
    assert [c.reason for c in first.candidates] == [ExitReason.STOP_LOSS]
    assert detector.on_tick("INFY", Decimal("93"), T0 + timedelta(seconds=30)).candidates == ()
    again = detector.on_tick("INFY", Decimal("93"), T0 + timedelta(seconds=60))
    assert len(again.candidates) == 1
    cleared = detector.on_tick("INFY", Decimal("96"), T0 + timedelta(seconds=61))
    assert [(c.trade_id, c.reason) for c in cleared.cleared] == [(1, ExitReason.STOP_LOSS)]


def test_time_exits_fire_without_a_tick_and_manual_exits_on_request() -> None:
    cond = TimeExit(nse_calendar(), square_off=None, max_holding=timedelta(minutes=5))
    detector = ExitDetector(cond)
    detector.add_trade(trade())
    unticked = detector.on_time(T0 + timedelta(minutes=5))  # no tick yet: the entry's price
    assert [(c.reason, c.price) for c in unticked.candidates] == [(ExitReason.TIME, Decimal("100"))]
    ticked = detector.on_tick("INFY", Decimal("101"), T0 + timedelta(minutes=5, seconds=1))
    assert ticked.candidates == ()  # repeated after 60 s
    fired = detector.on_time(T0 + timedelta(minutes=6))
    assert [(c.reason, c.price) for c in fired.candidates] == [(ExitReason.TIME, Decimal("101"))]
    manual = detector.request_manual_exit(1, T0, Decimal("101"))
    assert manual == ExitCandidate(
        trade_id=1, reason=ExitReason.MANUAL, price=Decimal("101"), detected_at=T0, symbol="INFY"
    )
    with pytest.raises(NotFoundError):
        detector.request_manual_exit(99, T0)
    fresh = ExitDetector(cond)
    fresh.add_trade(trade())
    assert fresh.request_manual_exit(1, T0).price == Decimal("100")  # no tick yet: the entry


def test_restart_keeps_the_persisted_water_mark() -> None:
    detector = ExitDetector(TrailingStop(Decimal("2")))
    detector.add_trade(trade(), water_mark=Decimal("120"))
    outcome = detector.on_tick("INFY", Decimal("118"), T0)
    assert [c.reason for c in outcome.candidates] == [ExitReason.TRAILING_STOP]


@pytest.mark.parametrize(
    "bad",
    [
        {"price": Decimal("NaN")},
        {"price": Decimal("-1")},
        {"detected_at": datetime(2026, 11, 25, 4, 0)},  # noqa: DTZ001 - naive on purpose
        {"reason": "PANIC"},
        {"trade_id": 0},
    ],
)
def test_bad_candidate_is_a_typed_error(bad: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "trade_id": 1,
        "reason": "TARGET",
        "price": Decimal("100"),
        "detected_at": T0,
        **bad,
    }
    with pytest.raises(InvalidInputError):
        ExitCandidate(**fields)


def test_detector_rejects_bad_ticks() -> None:
    detector = ExitDetector(StopLoss())
    with pytest.raises(InvalidInputError):
        detector.on_tick("INFY", Decimal("NaN"), T0)
    with pytest.raises(InvalidInputError):
        detector.on_tick("INFY", Decimal("100"), datetime(2026, 1, 1))  # noqa: DTZ001
