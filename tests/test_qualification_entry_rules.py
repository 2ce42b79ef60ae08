"""Entry rules and sizing: pure facts in, decision and reason codes out."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signal_mgmt.market.calendar import nse_calendar
from signal_mgmt.models import Direction, SizingMode
from signal_mgmt.qualification.entry_rules import EntryFacts, qualify_entry
from signal_mgmt.qualification.levels import Levels, plan_levels
from signal_mgmt.qualification.reasons import EntryReason
from signal_mgmt.qualification.sizing import size_entry, whole_lots
from signal_mgmt.reference.types import Account, InstrumentInfo, Position, to_tick

CAL = nse_calendar()
DAY = date(2026, 11, 25)
NOW = CAL.at_local(DAY, time(10, 0))
INFY = InstrumentInfo("INFY", Decimal("0.05"), 1)
ACCOUNT = Account(
    user_broker_id=1,
    enabled=True,
    connected=True,
    available_capital=Decimal(100_000),
    sizing_mode=SizingMode.FIXED_QUANTITY,
    fixed_quantity=10,
)


def facts(**changes: object) -> EntryFacts:
    base = EntryFacts(
        now=NOW,
        local_time=time(10, 0),
        session=CAL.session(DAY),
        symbol="INFY",
        direction=Direction.LONG,
        detected_at=NOW - timedelta(seconds=30),
        effective_floor=Decimal("99.00"),
        effective_ceiling=Decimal("100.00"),
        max_signal_age=timedelta(minutes=5),
        instrument=INFY,
        account=ACCOUNT,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_approves_with_direction_aware_levels() -> None:
    long = qualify_entry(facts())
    assert (long.approved, long.quantity, long.reasons) == (True, 10, ())
    assert long.levels == Levels(Decimal("100.00"), Decimal("102.00"), Decimal("99.00"))
    short = qualify_entry(facts(direction=Direction.SHORT))
    assert short.levels == Levels(Decimal("99.00"), Decimal("97.00"), Decimal("100.00"))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"account": replace(ACCOUNT, enabled=False)}, EntryReason.BROKER_DISABLED),
        ({"account": replace(ACCOUNT, connected=False)}, EntryReason.BROKER_DISCONNECTED),
        ({"instrument": replace(INFY, active=False)}, EntryReason.INSTRUMENT_INACTIVE),
        ({"session": None}, EntryReason.MARKET_HOLIDAY),
        ({"now": CAL.at_local(DAY, time(9, 0))}, EntryReason.MARKET_CLOSED),
        (
            {
                "account": replace(
                    ACCOUNT, entry_window_start=time(9, 20), entry_window_end=time(9, 45)
                )
            },
            EntryReason.OUTSIDE_ENTRY_WINDOW,
        ),
        ({"detected_at": NOW - timedelta(minutes=6)}, EntryReason.SIGNAL_STALE),
        (
            {"positions": (Position("INFY", 1, Decimal(100)),)},
            EntryReason.DUPLICATE_POSITION,
        ),
        (
            {
                "account": replace(ACCOUNT, max_open_trades=1),
                "positions": (Position("TCS", 1, Decimal(100)),),
            },
            EntryReason.MAX_OPEN_TRADES,
        ),
        ({"effective_floor": Decimal("100.00")}, EntryReason.ZERO_RISK),
        (
            {
                "account": replace(ACCOUNT, fixed_quantity=3),
                "instrument": replace(INFY, lot_size=5),
            },
            EntryReason.BELOW_ONE_LOT,
        ),
        (
            {"account": replace(ACCOUNT, available_capital=Decimal(50))},
            EntryReason.INSUFFICIENT_CAPITAL,
        ),
        (
            {"account": replace(ACCOUNT, max_exposure_per_symbol=Decimal(99))},
            EntryReason.SYMBOL_EXPOSURE_LIMIT,
        ),
        (
            {
                "account": replace(ACCOUNT, max_total_exposure=Decimal(1000)),
                "positions": (Position("TCS", 1, Decimal(950)),),
            },
            EntryReason.TOTAL_EXPOSURE_LIMIT,
        ),
    ],
)
def test_each_rule_rejects_with_its_reason(changes: dict[str, object], reason: EntryReason) -> None:
    decision = qualify_entry(facts(**changes))
    assert not decision.approved
    assert decision.quantity == 0
    assert reason in decision.reasons


def test_all_failing_rules_are_reported() -> None:
    decision = qualify_entry(
        facts(account=replace(ACCOUNT, enabled=False, connected=False), session=None)
    )
    assert decision.reasons == (
        EntryReason.BROKER_DISABLED,
        EntryReason.BROKER_DISCONNECTED,
        EntryReason.MARKET_HOLIDAY,
    )


def test_inside_the_user_window_and_custom_rules() -> None:
    window = replace(ACCOUNT, entry_window_start=time(9, 30), entry_window_end=time(10, 30))
    assert qualify_entry(facts(account=window)).approved

    def no_infy(f: EntryFacts) -> EntryReason | None:
        return EntryReason.INSTRUMENT_INACTIVE if f.symbol == "INFY" else None

    assert not qualify_entry(facts(), rules=(no_infy,)).approved


def test_capping_is_noted_on_the_approval() -> None:
    decision = qualify_entry(facts(account=replace(ACCOUNT, available_capital=Decimal(450))))
    assert (decision.approved, decision.quantity) == (True, 4)
    assert decision.reasons == (EntryReason.CAPPED_BY_CAPITAL,)


def test_sizing_modes() -> None:
    capital = replace(ACCOUNT, sizing_mode=SizingMode.FIXED_CAPITAL, fixed_capital=Decimal(1234))
    assert qualify_entry(facts(account=capital)).quantity == 12
    risk = replace(ACCOUNT, sizing_mode=SizingMode.RISK_PER_TRADE, risk_amount=Decimal(500))
    assert qualify_entry(facts(account=risk)).quantity == 500  # 500 / |100 - 99|
    lots = replace(INFY, lot_size=25)
    assert qualify_entry(facts(account=capital, instrument=lots)).reasons == (
        EntryReason.BELOW_ONE_LOT,
    )


prices = st.decimals(min_value=Decimal("0.05"), max_value=Decimal(5000), places=2)
money = st.decimals(min_value=Decimal(0), max_value=Decimal(10_000_000), places=2)


@given(
    mode=st.sampled_from(SizingMode),
    entry=prices,
    stop=prices,
    lot=st.integers(min_value=1, max_value=500),
    capital=money,
    fixed_quantity=st.integers(min_value=1, max_value=100_000),
    fixed_capital=money.filter(lambda m: m > 0),
    risk=money.filter(lambda m: m > 0),
    per_symbol=st.none() | money,
    total=st.none() | money,
    held=st.lists(
        st.tuples(st.sampled_from(["INFY", "TCS"]), st.integers(1, 1000), prices), max_size=4
    ),
)
def test_sizing_never_exceeds_capital_or_limits_and_is_whole_lots(
    *,
    mode: SizingMode,
    entry: Decimal,
    stop: Decimal,
    lot: int,
    capital: Decimal,
    fixed_quantity: int,
    fixed_capital: Decimal,
    risk: Decimal,
    per_symbol: Decimal | None,
    total: Decimal | None,
    held: list[tuple[str, int, Decimal]],
) -> None:
    account = Account(
        user_broker_id=1,
        enabled=True,
        connected=True,
        available_capital=capital,
        sizing_mode=mode,
        fixed_quantity=fixed_quantity,
        fixed_capital=fixed_capital,
        risk_amount=risk,
        max_exposure_per_symbol=per_symbol,
        max_total_exposure=total,
    )
    positions = [Position(symbol, qty, price * qty) for symbol, qty, price in held]
    sized = size_entry(
        account, symbol="INFY", entry=entry, stop=stop, lot_size=lot, positions=positions
    )
    notional = sized.quantity * entry
    used = sum((p.notional for p in positions), Decimal(0))
    used_here = sum((p.notional for p in positions if p.symbol == "INFY"), Decimal(0))
    assert sized.quantity >= 0
    assert sized.quantity % lot == 0
    if sized.quantity == 0:
        assert sized.reasons  # a rejection always says why
        return
    assert used + notional <= capital
    assert per_symbol is None or used_here + notional <= per_symbol
    assert total is None or used + notional <= total
    if mode is SizingMode.FIXED_QUANTITY:
        assert sized.quantity <= fixed_quantity
    elif mode is SizingMode.FIXED_CAPITAL:
        assert notional <= fixed_capital
    else:
        assert sized.quantity * abs(entry - stop) <= risk


@given(
    direction=st.sampled_from(Direction),
    floor=st.integers(min_value=1, max_value=100_000),
    width=st.integers(min_value=0, max_value=500),
    ratio=st.decimals(min_value=Decimal("0.1"), max_value=Decimal(5), places=2),
)
def test_levels_are_on_the_tick_and_direction_aware(
    direction: Direction, floor: int, width: int, ratio: Decimal
) -> None:
    tick = Decimal("0.05")
    planned = plan_levels(direction, floor * tick, (floor + width) * tick, ratio, tick)
    if isinstance(planned, EntryReason):
        assert width == 0 or planned is EntryReason.INVALID_LEVELS
        return
    for price in (planned.entry, planned.target, planned.stop):
        assert price == to_tick(price, tick)
    if direction is Direction.LONG:
        assert planned.stop < planned.entry < planned.target
    else:
        assert planned.target < planned.entry < planned.stop
    shifted = planned.shifted_to(planned.entry + 3 * tick, tick)
    assert shifted.target - shifted.entry == planned.target - planned.entry


def test_whole_lots_and_to_tick_edges() -> None:
    assert whole_lots(Decimal("99.9"), 25) == 75
    assert whole_lots(-5, 1) == 0
    assert to_tick(Decimal("100.024999"), Decimal("0.05")) == Decimal("100.00")
    assert str(to_tick(Decimal("100.5"), Decimal("0.050000"))) == "100.50"
    assert str(to_tick(Decimal("1234"), Decimal("5"))) == "1235"
