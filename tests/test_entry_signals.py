"""SignalService.publish: one signal per key, one delivery per subscriber, events with the rows."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from entry_support import count
from entry_world import make_world
from signal_mgmt.entry.candidate import SignalCandidate
from signal_mgmt.errors import InvalidInputError
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import OutboxRow, Signal, SignalDelivery, SignalStatus
from signal_mgmt.storage.db import transaction


def events(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(OutboxRow.event_type, OutboxRow.partition_key).order_by(OutboxRow.id)
        )
        return [(r[0], r[1]) for r in rows]


def test_publish_fans_out_to_subscribers_and_emits(engine: Engine, clock: ManualClock) -> None:
    world = make_world(engine, clock, users=2)
    result = world.signals.publish(world.candidate("INFY"))
    assert result.created
    assert len(result.delivery_ids) == 2  # the TCS-only user gets nothing
    with engine.connect() as conn:
        signal = conn.execute(select(Signal.__table__)).one()
        assert signal.status == SignalStatus.PUBLISHED
        assert signal.published_at == clock.now()
        assert signal.signal_day.isoformat() == "2026-11-25"
        assert count(conn, SignalDelivery) == 2
    assert events(engine) == [
        ("SIGNAL_PUBLISHED", "symbol:INFY"),
        ("SIGNAL_DELIVERY_CREATED", "symbol:INFY"),
        ("SIGNAL_DELIVERY_CREATED", "symbol:INFY"),
    ]
    tcs = world.signals.publish(world.candidate("TCS"))
    assert len(tcs.delivery_ids) == 3


def test_duplicate_with_float_noise_writes_and_emits_nothing(
    engine: Engine, clock: ManualClock
) -> None:
    world = make_world(engine, clock)
    first = world.signals.publish(world.candidate(effective_floor=99.0, effective_ceiling=100.0))
    again = world.signals.publish(
        world.candidate(effective_floor=99.0000000001, effective_ceiling=100.01999999)
    )
    assert (again.signal_id, again.created, again.delivery_ids) == (
        first.signal_id,
        False,
        first.delivery_ids,
    )
    assert len(events(engine)) == 3
    with engine.connect() as conn:
        assert count(conn, Signal) == 1
        stored = conn.execute(select(Signal.effective_ceiling)).scalar_one()
    assert stored == Decimal("100.00")


def test_signal_day_is_the_kolkata_trading_date(engine: Engine, clock: ManualClock) -> None:
    world = make_world(engine, clock)
    late_utc = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)  # 00:30 on the 25th in Kolkata
    world.signals.publish(world.candidate(detected_at=late_utc))
    with engine.connect() as conn:
        assert conn.execute(select(Signal.signal_day)).scalar_one().isoformat() == "2026-11-25"


def test_callers_transaction_rolls_back_signal_and_events(
    engine: Engine, clock: ManualClock
) -> None:
    world = make_world(engine, clock)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction(engine) as conn:
        world.signals.publish(world.candidate(), connection=conn)
        raise Boom
    with engine.connect() as conn:
        assert (count(conn, Signal), count(conn, SignalDelivery), count(conn, OutboxRow)) == (
            0,
            0,
            0,
        )


BAD_CANDIDATES: list[dict[str, Any]] = [
    {"symbol": ""},
    {"symbol": "   "},
    {"direction": "SIDEWAYS"},
    {"direction": "long"},
    {"confluence_type": ""},
    {"effective_floor": Decimal("101"), "effective_ceiling": Decimal("100")},
    {"effective_floor": float("nan")},
    {"effective_ceiling": Decimal("Infinity")},
    {"effective_floor": Decimal("-1")},
    {"effective_floor": Decimal("0")},
    {"detected_at": datetime(2026, 11, 25, 9, 30)},  # noqa: DTZ001 - naive on purpose
    {"metadata": {"x": object()}},
]


@pytest.mark.parametrize("bad", BAD_CANDIDATES)
def test_bad_candidate_is_a_typed_error(bad: dict[str, Any], clock: ManualClock) -> None:
    values: dict[str, Any] = {
        "symbol": "INFY",
        "direction": "LONG",
        "confluence_type": "VWAP",
        "detected_at": clock.now(),
        "effective_floor": Decimal(99),
        "effective_ceiling": Decimal(100),
        **bad,
    }
    with pytest.raises(InvalidInputError):
        SignalCandidate(**values)


@pytest.mark.parametrize(
    "candidate",
    [
        {"symbol": "NOPE"},
        {"effective_floor": Decimal("0.01"), "effective_ceiling": Decimal("0.02")},
    ],
)
def test_unknown_symbol_or_sub_tick_level_writes_nothing(
    engine: Engine, clock: ManualClock, candidate: dict[str, Any]
) -> None:
    world = make_world(engine, clock)
    with pytest.raises(InvalidInputError):
        world.signals.publish(world.candidate(**candidate))
    with pytest.raises(InvalidInputError):
        world.signals.publish("INFY")  # type: ignore[arg-type]
    with engine.connect() as conn:
        assert (count(conn, Signal), count(conn, OutboxRow)) == (0, 0)


def test_replay_finishes_a_detected_signal_once(engine: Engine, clock: ManualClock) -> None:
    world = make_world(engine, clock)
    with transaction(engine) as conn:  # a signal whose fan-out was left for later
        signal_id = conn.execute(
            insert(Signal).returning(Signal.id),
            [
                {
                    "symbol": "INFY",
                    "direction": "SHORT",
                    "confluence_type": "ORB",
                    "signal_day": clock.now().date(),
                    "effective_floor": Decimal("99.00"),
                    "effective_ceiling": Decimal("100.00"),
                    "status": SignalStatus.DETECTED.value,
                    "detected_at": clock.now(),
                    "metadata": {},
                    "created_at": clock.now(),
                }
            ],
        ).scalar_one()
    assert world.signals.finish_detected() == [signal_id]
    assert world.signals.finish_detected() == []
    with engine.connect() as conn:
        assert count(conn, SignalDelivery) == 2
        assert conn.execute(select(Signal.status)).scalar_one() == SignalStatus.PUBLISHED
    assert [kind for kind, _ in events(engine)] == [
        "SIGNAL_PUBLISHED",
        "SIGNAL_DELIVERY_CREATED",
        "SIGNAL_DELIVERY_CREATED",
    ]
