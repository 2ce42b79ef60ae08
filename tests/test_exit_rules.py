"""Stage B exit rules: reason codes, order plans, slicing and limit rounding (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signal_mgmt.errors import InvalidInputError
from signal_mgmt.market import nse_calendar
from signal_mgmt.models import Direction, ExitReason, OrderSide, OrderType
from signal_mgmt.qualification.exit_rules import (
    ExitFacts,
    ExitRejectReason,
    qualify_exit,
    round_limit_price,
)
from signal_mgmt.qualification.sizing import slice_quantity

AT = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
CAL = nse_calendar()


def facts(**overrides: object) -> ExitFacts:
    base = ExitFacts(
        reason=ExitReason.STOP_LOSS,
        price=Decimal("95"),
        at=AT,
        trade_status="OPEN",
        direction=Direction.LONG,
        open_quantity=100,
        target_price=Decimal("110.03"),
        tick_size=Decimal("0.05"),
        lot_size=25,
        freeze_quantity=None,
        broker_enabled=True,
        broker_connected=True,
        live_exit=False,
        session=CAL.session(CAL.trading_date(AT)),
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def test_an_operable_stop_is_approved_at_market() -> None:
    decision = qualify_exit(facts())
    assert decision.approved
    assert decision.plan.order_type is OrderType.MARKET
    assert decision.plan.side is OrderSide.SELL
    assert decision.plan.slices == (100,)


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"trade_status": "CLOSED"}, ExitRejectReason.TRADE_NOT_OPEN),
        ({"open_quantity": 0}, ExitRejectReason.NO_OPEN_QUANTITY),
        ({"broker_enabled": False}, ExitRejectReason.BROKER_DISABLED),
        ({"broker_connected": False}, ExitRejectReason.BROKER_DISCONNECTED),
        ({"live_exit": True}, ExitRejectReason.EXIT_ALREADY_LIVE),
        ({"portfolio_locked": True}, ExitRejectReason.PORTFOLIO_LOCKED),
        ({"trade_frozen": True}, ExitRejectReason.TRADE_FROZEN),
        ({"session": None}, ExitRejectReason.MARKET_HOLIDAY),
        ({"at": datetime(2026, 11, 25, 10, 30, tzinfo=UTC)}, ExitRejectReason.MARKET_CLOSED),
    ],
)
def test_each_rule_rejects_with_its_code(
    override: dict[str, object], code: ExitRejectReason
) -> None:
    decision = qualify_exit(facts(**override))
    assert decision.reason_codes == (code,)
    assert not decision.approved


def test_holiday_and_special_session_come_from_the_calendar() -> None:
    holiday = date(2026, 11, 24)
    assert qualify_exit(facts(session=CAL.session(holiday))).reason_codes == (
        ExitRejectReason.MARKET_HOLIDAY,
    )
    muhurat = CAL.with_special_session(holiday, time(18, 0), time(19, 0), "special")
    session = muhurat.session(holiday)
    assert session is not None
    assert qualify_exit(facts(session=session, at=session.open_at)).approved
    after = qualify_exit(facts(session=session, at=session.close_at))
    assert after.reason_codes == (ExitRejectReason.MARKET_CLOSED,)


def test_targets_leave_as_a_limit_on_the_tick_that_does_not_worsen() -> None:
    long_plan = qualify_exit(facts(reason=ExitReason.TARGET)).plan
    assert (long_plan.order_type, long_plan.limit_price) == (OrderType.LIMIT, Decimal("110.05"))
    short_plan = qualify_exit(
        facts(reason=ExitReason.TARGET, direction=Direction.SHORT, target_price=Decimal("90.07"))
    ).plan
    assert (short_plan.side, short_plan.limit_price) == (OrderSide.BUY, Decimal("90.05"))


def test_quantities_above_the_freeze_are_sliced() -> None:
    plan = qualify_exit(facts(open_quantity=1900, freeze_quantity=900, lot_size=50)).plan
    assert plan.slices == (900, 900, 100)


@given(
    quantity=st.integers(min_value=1, max_value=100_000),
    freeze=st.one_of(st.none(), st.integers(min_value=1, max_value=5_000)),
    lot=st.integers(min_value=1, max_value=500),
)
def test_slices_sum_to_the_quantity_and_respect_the_freeze(
    quantity: int, freeze: int | None, lot: int
) -> None:
    slices = slice_quantity(quantity, freeze, lot)
    assert sum(slices) == quantity
    assert all(s > 0 for s in slices)
    if freeze is not None:
        assert all(s <= freeze for s in slices)
        if quantity % lot == 0 and freeze >= lot:
            assert all(s % lot == 0 for s in slices)


@given(
    price=st.decimals(min_value="0.01", max_value="100000", places=4),
    tick=st.sampled_from([Decimal("0.05"), Decimal("0.01"), Decimal("0.5"), Decimal("1")]),
    side=st.sampled_from(list(OrderSide)),
)
def test_limit_rounding_never_worsens(price: Decimal, tick: Decimal, side: OrderSide) -> None:
    limit = round_limit_price(price, tick, side)
    assert limit % tick == 0
    assert abs(limit - price) < tick
    if side is OrderSide.SELL:
        assert limit >= price
    else:
        assert limit <= price


def test_bad_slicing_input_is_a_typed_error() -> None:
    with pytest.raises(InvalidInputError):
        slice_quantity(0, 10, 1)
    with pytest.raises(InvalidInputError):
        round_limit_price(Decimal("1"), Decimal("0"), OrderSide.BUY)
