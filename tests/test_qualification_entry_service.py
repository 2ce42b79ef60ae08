"""EntryQualificationService: each delivery consumed once into one intent, with its event."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from entry_support import count
from entry_world import World, make_world
from signal_mgmt.entry.qualification import EntryQualificationService
from signal_mgmt.errors import NotFoundError
from signal_mgmt.market.calendar import nse_calendar
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import (
    OutboxRow,
    SignalDelivery,
    TradeIntent,
    TradeIntentStatus,
)


def service(world: World) -> EntryQualificationService:
    return EntryQualificationService(world.engine, world.clock, nse_calendar())


def intent_events(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(OutboxRow.event_type)
            .where(OutboxRow.event_type.like("TRADE_INTENT_%"))
            .order_by(OutboxRow.id)
        )
        return list(rows.scalars())


def test_delivery_becomes_one_approved_intent(engine: Engine, clock: ManualClock) -> None:
    world = make_world(engine, clock, users=1)
    published = world.signals.publish(world.candidate("INFY"))
    qualification = service(world)
    [delivery] = published.delivery_ids
    first = qualification.qualify(delivery)
    again = qualification.qualify(delivery)
    assert first.created
    assert not again.created
    assert (first.status, first.quantity) == (TradeIntentStatus.APPROVED, 10)
    assert again.trade_intent_id == first.trade_intent_id
    assert intent_events(engine) == ["TRADE_INTENT_APPROVED"]
    with engine.connect() as conn:
        intent = conn.execute(select(TradeIntent.__table__)).one()
        consumed = conn.execute(select(SignalDelivery.consumed_at)).scalar_one()
    assert (intent.entry_price, intent.target_price, intent.stop_price) == (
        Decimal("100.00"),
        Decimal("102.00"),
        Decimal("99.00"),
    )
    assert consumed == clock.now()


def test_disconnected_broker_is_rejected_with_reason(engine: Engine, clock: ManualClock) -> None:
    world = make_world(engine, clock, users=1)
    world.admin.set_broker_state(world.user_brokers[0], connected=False)
    [delivery] = world.signals.publish(world.candidate("INFY")).delivery_ids
    result = service(world).qualify(delivery)
    assert (result.status, result.reason_codes) == (
        TradeIntentStatus.REJECTED,
        ("BROKER_DISCONNECTED",),
    )
    assert intent_events(engine) == ["TRADE_INTENT_REJECTED"]


def test_holiday_and_stale_signal(engine: Engine, clock: ManualClock) -> None:
    world = make_world(engine, clock, users=1)
    clock.set(datetime(2026, 11, 24, 5, 0, tzinfo=UTC))  # Guru Nanak Jayanti
    [delivery] = world.signals.publish(world.candidate("INFY")).delivery_ids
    clock.advance(timedelta(minutes=10))
    result = service(world).qualify(delivery)
    assert set(result.reason_codes) == {"MARKET_HOLIDAY", "SIGNAL_STALE"}


def test_an_approved_intent_counts_as_an_open_position(engine: Engine, clock: ManualClock) -> None:
    world = make_world(engine, clock, users=0, tcs_only=False)
    user = world.add_user("careful", max_open_trades=1)
    world.admin.subscribe(user)
    qualification = service(world)
    [infy] = world.signals.publish(world.candidate("INFY")).delivery_ids
    [tcs] = world.signals.publish(world.candidate("TCS")).delivery_ids
    [again] = world.signals.publish(world.candidate("INFY", confluence_type="ORB")).delivery_ids
    assert qualification.qualify(infy).status is TradeIntentStatus.APPROVED
    assert qualification.qualify(tcs).reason_codes == ("MAX_OPEN_TRADES",)
    assert set(qualification.qualify(again).reason_codes) == {
        "DUPLICATE_POSITION",
        "MAX_OPEN_TRADES",
    }


def test_replay_consumes_only_unconsumed_deliveries(engine: Engine, clock: ManualClock) -> None:
    world = make_world(engine, clock, users=3)
    ids = world.signals.publish(world.candidate("INFY")).delivery_ids
    qualification = service(world)
    qualification.qualify(ids[0])
    replayed = qualification.qualify_pending()
    assert [r.created for r in replayed] == [True, True]
    assert qualification.qualify_pending() == []
    with engine.connect() as conn:
        assert count(conn, TradeIntent) == 3


def test_unknown_delivery_is_not_found_and_writes_nothing(
    engine: Engine, clock: ManualClock
) -> None:
    world = make_world(engine, clock)
    with pytest.raises(NotFoundError):
        service(world).qualify(12345)
    with engine.connect() as conn:
        assert (count(conn, TradeIntent), count(conn, OutboxRow)) == (0, 0)


def test_the_callers_session_owns_the_transaction(engine: Engine, clock: ManualClock) -> None:
    world = make_world(engine, clock, users=1, tcs_only=False)
    [delivery] = world.signals.publish(world.candidate("INFY")).delivery_ids
    with Session(engine) as session:
        service(world).qualify(delivery, connection=session)
        session.rollback()
    assert intent_events(engine) == []
    with engine.connect() as conn:
        assert count(conn, TradeIntent) == 0
        assert conn.execute(select(SignalDelivery.consumed_at)).scalar_one() is None
    with Session(engine) as session:
        result = service(world).qualify(delivery, connection=session)
        session.commit()
    assert result.created
    assert intent_events(engine) == ["TRADE_INTENT_APPROVED"]


def test_the_users_entry_window_is_read_from_the_table(engine: Engine, clock: ManualClock) -> None:
    world = make_world(engine, clock, users=0, tcs_only=False)  # clock: 09:30 Asia/Kolkata
    early = world.add_user("early", entry_window_start=time(9, 15), entry_window_end=time(9, 20))
    late = world.add_user("late", entry_window_start=time(9, 25), entry_window_end=time(15, 0))
    for user in (early, late):
        world.admin.subscribe(user)
    qualification = service(world)
    early_delivery, late_delivery = world.signals.publish(world.candidate("INFY")).delivery_ids
    assert qualification.qualify(early_delivery).reason_codes == ("OUTSIDE_ENTRY_WINDOW",)
    assert qualification.qualify(late_delivery).status is TradeIntentStatus.APPROVED
