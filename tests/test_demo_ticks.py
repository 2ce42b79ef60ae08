"""The demo's sample data, tick generator and breakout detector (pure, no database)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from signal_mgmt.demo.detector import Breakout, OpeningRangeBreakout
from signal_mgmt.demo.sample import SampleInstrument, load_sample_instruments
from signal_mgmt.demo.ticks import Tick, TickProfile, session_ticks
from signal_mgmt.errors import InvalidInputError
from signal_mgmt.market import Session, nse_calendar

DAY = date(2026, 11, 25)


@pytest.fixture
def session() -> Session:
    found = nse_calendar().session(DAY)
    assert found is not None
    return found


def test_sample_has_equities_and_futures_with_realistic_sizes() -> None:
    sample = {item.symbol: item for item in load_sample_instruments()}
    assert len(sample) >= 30
    assert sample["RELIANCE"].lot_size == 1
    assert sample["RELIANCE"].tick_size == Decimal("0.05")
    assert (sample["NIFTYFUT"].lot_size, sample["NIFTYFUT"].freeze_quantity) == (75, 1800)
    assert (sample["BANKNIFTYFUT"].lot_size, sample["BANKNIFTYFUT"].freeze_quantity) == (35, 900)
    for item in sample.values():
        assert item.reference_price % item.tick_size == 0
        assert item.freeze_quantity >= item.lot_size


def test_same_seed_same_ticks_other_seed_other_ticks(session: Session) -> None:
    sample = load_sample_instruments()[:5]
    first = list(session_ticks(sample, session, seed=11))
    assert first == list(session_ticks(sample, session, seed=11))
    assert first != list(session_ticks(sample, session, seed=12))


def test_ticks_sit_on_the_grid_inside_the_session_in_time_order(session: Session) -> None:
    sample = load_sample_instruments()
    by_symbol = {item.symbol: item for item in sample}
    ticks = list(session_ticks(sample, session, seed=3))
    steps = int((session.close_at - session.open_at) / TickProfile().step)
    assert len(ticks) == steps * len(sample)
    assert [t.at for t in ticks] == sorted(t.at for t in ticks)
    for tick in ticks:
        assert session.contains(tick.at)
        assert tick.price > 0
        assert tick.price % by_symbol[tick.symbol].tick_size == 0


def test_walk_has_gaps_and_fast_moves(session: Session) -> None:
    """Over a day and the whole sample some step jumps by far more than its volatility."""
    sample = load_sample_instruments()
    last: dict[str, Decimal] = {}
    biggest = Decimal(0)
    for tick in session_ticks(sample, session, seed=5):
        if tick.symbol in last:
            biggest = max(biggest, abs(tick.price / last[tick.symbol] - 1))
        last[tick.symbol] = tick.price
    assert biggest > Decimal("0.004")  # > 6 volatilities of one step


def test_non_positive_step_is_refused(session: Session) -> None:
    profile = TickProfile(step=timedelta(0))
    with pytest.raises(InvalidInputError):
        next(session_ticks(load_sample_instruments(), session, seed=1, profile=profile))


def _tick(session: Session, minutes: int, price: str, symbol: str = "TCS") -> Tick:
    return Tick(symbol, Decimal(price), session.open_at + timedelta(minutes=minutes))


def test_breakout_above_the_opening_range_is_long_once(session: Session) -> None:
    detector = OpeningRangeBreakout(session)
    for minutes, price in [(0, "100.00"), (5, "101.50"), (10, "99.25"), (16, "101.50")]:
        assert detector.on_tick(_tick(session, minutes, price)) is None
    breakout = detector.on_tick(_tick(session, 17, "101.55"))
    assert breakout is not None
    assert (breakout.direction, breakout.confluence_type) == ("LONG", "ORB15")
    assert (breakout.effective_floor, breakout.effective_ceiling) == (
        Decimal("99.25"),
        Decimal("101.50"),
    )
    assert breakout.price == Decimal("101.55")
    assert breakout.detected_at == session.open_at + timedelta(minutes=17)
    assert detector.on_tick(_tick(session, 18, "102.00")) is None
    short = detector.on_tick(_tick(session, 30, "99.20"))
    assert short is not None
    assert short.direction == "SHORT"


def test_no_breakout_without_a_range_after_cutoff_or_outside_session(session: Session) -> None:
    detector = OpeningRangeBreakout(session, cutoff=timedelta(hours=1))
    assert detector.on_tick(_tick(session, 20, "500.00", symbol="LT")) is None  # no range seen
    detector.on_tick(_tick(session, 0, "100.00"))
    assert detector.on_tick(_tick(session, 61, "120.00")) is None  # after the cut-off
    assert detector.on_tick(_tick(session, -1, "120.00")) is None  # before the open


def test_detector_over_generated_ticks_is_deterministic(session: Session) -> None:
    sample = load_sample_instruments()

    def run() -> list[Breakout]:
        detector = OpeningRangeBreakout(session)
        found = (detector.on_tick(t) for t in session_ticks(sample, session, seed=9))
        return [b for b in found if b is not None]

    breakouts = run()
    assert breakouts == run()
    assert len(breakouts) > len(sample) // 2
    assert len({(b.symbol, b.direction) for b in breakouts}) == len(breakouts)


def test_bad_range_is_refused(session: Session) -> None:
    with pytest.raises(InvalidInputError):
        OpeningRangeBreakout(session, range_length=timedelta(hours=6))


def test_sample_instrument_from_mapping_reads_decimals() -> None:
    item = SampleInstrument.from_mapping(
        {
            "symbol": "X",
            "exchange": "NSE",
            "segment": "EQ",
            "tick_size": "0.05",
            "lot_size": 1,
            "freeze_quantity": 10,
            "reference_price": "10.05",
        }
    )
    assert item.reference_price == Decimal("10.05")
    assert item.tick_size == Decimal("0.05")
