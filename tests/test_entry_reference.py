"""Reference data: the host API (validated, idempotent) and the default ReferenceData port."""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, select

from entry_support import count
from entry_world import make_world
from signal_mgmt.entry.qualification import EntryQualificationService
from signal_mgmt.errors import IllegalTransitionError, InvalidInputError, NotFoundError
from signal_mgmt.execution import SimulatedBroker
from signal_mgmt.market.calendar import nse_calendar
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import (
    Instrument,
    Subscription,
    TradeIntent,
    TradeIntentStatus,
    UserBroker,
)
from signal_mgmt.reference import InstrumentSpec, TableReferenceData, UserBrokerSpec
from signal_mgmt.storage.db import transaction
from signal_mgmt.storage.state import transition
from signal_mgmt.tms import TradeOpener


@pytest.mark.parametrize(
    "bad",
    [
        {"symbol": ""},
        {"symbol": "IN FY"},
        {"tick_size": Decimal(0)},
        {"tick_size": Decimal("NaN")},
        {"lot_size": 0},
        {"freeze_quantity": -1},
    ],
)
def test_bad_instrument_spec(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError):
        InstrumentSpec(**{"symbol": "INFY", **bad})


@pytest.mark.parametrize(
    "bad",
    [
        {"sizing_mode": "FIXED_CAPITAL"},  # without fixed_capital
        {"sizing_mode": "MARTINGALE"},
        {"available_capital": Decimal(-1)},
        {"entry_window_start": time(10, 0)},  # without an end
        {"entry_window_start": time(11, 0), "entry_window_end": time(10, 0)},
        {"reward_risk_ratio": Decimal(0)},
        {"user_id": ""},
    ],
)
def test_bad_user_broker_spec(bad: dict[str, Any]) -> None:
    values = {"user_id": "u", "broker": "SIM", "available_capital": Decimal(1), **bad}
    values.setdefault("sizing_mode", "FIXED_QUANTITY")
    values.setdefault("fixed_quantity", 1)
    with pytest.raises(InvalidInputError):
        UserBrokerSpec(**values)


def test_admin_upserts_and_subscribes_idempotently(engine: Engine, clock: ManualClock) -> None:
    world = make_world(engine, clock, users=1)
    world.admin.add_instruments([InstrumentSpec(symbol="INFY", tick_size=Decimal("0.10"))])
    again = world.add_user("user0", available_capital=Decimal(5))
    assert again == world.user_brokers[0]
    world.admin.subscribe(again)
    world.admin.subscribe(again)
    with engine.connect() as conn:
        assert count(conn, Instrument) == 3
        assert conn.execute(
            select(Instrument.tick_size).where(Instrument.symbol == "INFY")
        ).scalar_one() == Decimal("0.10")
        assert count(conn, UserBroker) == 2
        assert count(conn, Subscription) == 2
        reference = TableReferenceData()
        account = reference.account(conn, again)
        assert account is not None
        assert account.available_capital == Decimal(5)
        assert reference.audience(conn, "TCS", "ORB") == sorted(set(world.user_brokers))
        assert reference.instrument(conn, "NOPE") is None


def test_admin_refuses_unknown_user_broker_and_bad_values(
    engine: Engine, clock: ManualClock
) -> None:
    world = make_world(engine, clock, users=1)
    with pytest.raises(NotFoundError):
        world.admin.subscribe(999)
    with pytest.raises(NotFoundError):
        world.admin.set_broker_state(999, connected=False)
    with pytest.raises(InvalidInputError):
        world.admin.subscribe(world.user_brokers[0], symbol=" ")
    with pytest.raises(InvalidInputError):
        world.admin.set_broker_state(world.user_brokers[0], available_capital=Decimal(-5))
    with engine.connect() as conn:
        assert count(conn, Subscription) == 2


def test_positions_count_approved_and_open_entries(engine: Engine, clock: ManualClock) -> None:
    world = make_world(engine, clock, users=1, tcs_only=False)
    user = world.user_brokers[0]
    qualification = EntryQualificationService(engine, clock, nse_calendar())
    for symbol in ("INFY", "TCS"):
        [delivery] = world.signals.publish(world.candidate(symbol)).delivery_ids
        qualification.qualify(delivery)
    TradeOpener(engine, clock, SimulatedBroker({"INFY": Decimal("100.5")})).open(1)
    with engine.connect() as conn:
        positions = TableReferenceData().positions(conn, user)
    assert sorted((p.symbol, p.quantity, p.notional) for p in positions) == [
        ("INFY", 10, Decimal("1005.0")),  # filled: the real price
        ("TCS", 10, Decimal("1000.00")),  # approved: the planned entry
    ]


def test_illegal_transition_raises_and_writes_nothing(engine: Engine, clock: ManualClock) -> None:
    world = make_world(engine, clock, users=1, tcs_only=False)
    [delivery] = world.signals.publish(world.candidate("INFY")).delivery_ids
    intent = EntryQualificationService(engine, clock, nse_calendar()).qualify(delivery)
    with pytest.raises(IllegalTransitionError) as raised, transaction(engine) as conn:
        transition(
            conn,
            TradeIntent,
            intent.trade_intent_id,
            expected={TradeIntentStatus.PLACED},
            target=TradeIntentStatus.FILLED,
        )
    assert (raised.value.actual, raised.value.target) == ("APPROVED", "FILLED")
    with engine.connect() as conn:
        assert conn.execute(select(TradeIntent.status)).scalar_one() == "APPROVED"
