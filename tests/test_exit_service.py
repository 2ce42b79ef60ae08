"""ExitIntentService on SQLite and PostgreSQL: episodes, cooldown, Stage B, events, bad input."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, insert, update

from entry_support import AT
from exit_support import candidate, counts, event_types, rewinding_exit_intents, rows, seed
from signal_mgmt.errors import InvalidInputError, NotFoundError
from signal_mgmt.exit.candidate import ExitCleared
from signal_mgmt.exit.episodes import ClearOutcome
from signal_mgmt.exit.holds import InMemoryExitHolds
from signal_mgmt.exit.service import ExitIntentService, ExitOutcome
from signal_mgmt.exit.settings import ExitSettings
from signal_mgmt.market import ManualClock, nse_calendar
from signal_mgmt.models import ExitIntent, ExitReason, ExitSignal, Trade, UserBroker

COOLDOWN = timedelta(minutes=5)


def service(engine: Engine, clock: ManualClock, **kwargs: object) -> ExitIntentService:
    return ExitIntentService(
        engine,
        clock,
        settings=ExitSettings(cooldown=COOLDOWN),
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_stop_is_published_and_approved_at_market(engine: Engine, clock: ManualClock) -> None:
    trade_id = seed(engine)
    result = service(engine, clock).on_exit_detected(candidate(trade_id))
    assert result.outcome is ExitOutcome.APPROVED
    assert result.episode_id == 1
    [signal] = rows(engine, ExitSignal)
    assert (signal.status, signal.exit_reason, signal.price) == (
        "PUBLISHED",
        "STOP_LOSS",
        Decimal("94.95"),
    )
    [intent] = rows(engine, ExitIntent)
    assert (intent.status, intent.side, intent.order_type, intent.quantity) == (
        "APPROVED",
        "SELL",
        "MARKET",
        10,
    )
    assert intent.slices == [10]
    assert event_types(engine) == ["EXIT_SIGNAL_PUBLISHED", "EXIT_INTENT_APPROVED"]


def test_a_held_condition_does_not_fire_again(engine: Engine, clock: ManualClock) -> None:
    trade_id = seed(engine)
    svc = service(engine, clock)
    svc.on_exit_detected(candidate(trade_id))
    before = counts(engine)
    clock.advance(COOLDOWN - timedelta(seconds=1))
    again = svc.on_exit_detected(candidate(trade_id, price="94.50"))
    assert (again.outcome, again.episode_id) == (ExitOutcome.SUPPRESSED, 1)
    assert counts(engine) == before


def test_cooldown_holds_across_a_new_service_instance(engine: Engine, clock: ManualClock) -> None:
    trade_id = seed(engine, connected=False)
    first = service(engine, clock).on_exit_detected(candidate(trade_id))
    assert first.outcome is ExitOutcome.REJECTED
    assert first.reason_codes == ("BROKER_DISCONNECTED",)
    clock.advance(timedelta(minutes=1))
    restarted = service(engine, clock)
    held = restarted.on_exit_detected(candidate(trade_id, at=clock.now()))
    assert held.outcome is ExitOutcome.SUPPRESSED
    with engine.begin() as conn:
        conn.execute(update(UserBroker).values(connected=True))
    clock.advance(COOLDOWN)
    retry = service(engine, clock).on_exit_detected(candidate(trade_id, at=clock.now()))
    assert (retry.outcome, retry.episode_id) == (ExitOutcome.APPROVED, 2)
    [trade] = rows(engine, Trade)
    assert trade.status == "OPEN"  # a rejected exit never touches the trade


def test_a_cleared_condition_re_arms(engine: Engine, clock: ManualClock) -> None:
    trade_id = seed(engine)
    svc = service(engine, clock)
    svc.on_exit_detected(candidate(trade_id))
    clock.advance(timedelta(seconds=10))
    assert svc.on_exit_cleared(
        ExitCleared(trade_id=trade_id, reason=ExitReason.STOP_LOSS, cleared_at=clock.now())
    ).rearmed
    clock.advance(timedelta(seconds=10))
    second = svc.on_exit_detected(candidate(trade_id, at=clock.now()))
    # A new episode, but the first exit is still live: recorded and rejected.
    assert (second.outcome, second.episode_id) == (ExitOutcome.REJECTED, 2)
    assert second.reason_codes == ("EXIT_ALREADY_LIVE",)
    live = [i for i in rows(engine, ExitIntent) if i.status in {"PENDING", "APPROVED", "PLACED"}]
    assert len(live) == 1


def test_a_stale_clear_does_not_re_arm(engine: Engine, clock: ManualClock) -> None:
    trade_id = seed(engine)
    svc = service(engine, clock)
    svc.on_exit_detected(candidate(trade_id))
    stale = ExitCleared(trade_id=trade_id, reason=ExitReason.STOP_LOSS, cleared_at=AT)
    refused = svc.on_exit_cleared(stale)
    assert (refused.outcome, refused.reason_codes) == (ClearOutcome.STALE, ("STALE_CLEAR",))
    assert svc.on_exit_detected(candidate(trade_id)).outcome is ExitOutcome.SUPPRESSED


def test_target_exits_leave_as_a_limit_at_the_target(engine: Engine, clock: ManualClock) -> None:
    trade_id = seed(engine, direction="SHORT", target="90", stop="105")
    result = service(engine, clock).on_exit_detected(
        candidate(trade_id, ExitReason.TARGET, price="89.95")
    )
    assert result.outcome is ExitOutcome.APPROVED
    [intent] = rows(engine, ExitIntent)
    assert (intent.side, intent.order_type, intent.limit_price) == ("BUY", "LIMIT", Decimal("90"))


def test_quantities_above_the_freeze_are_sliced(engine: Engine, clock: ManualClock) -> None:
    trade_id = seed(engine, symbol="NIFTY", quantity=1900, lot=50, freeze=900)
    service(engine, clock).on_exit_detected(candidate(trade_id))
    [intent] = rows(engine, ExitIntent)
    assert intent.slices == [900, 900, 100]


@pytest.mark.parametrize(
    ("now", "code"),
    [
        (datetime(2026, 11, 25, 10, 30, tzinfo=UTC), "MARKET_CLOSED"),  # 16:00 IST
        (datetime(2026, 11, 24, 5, 0, tzinfo=UTC), "MARKET_HOLIDAY"),  # Guru Nanak Jayanti
        (datetime(2026, 11, 28, 5, 0, tzinfo=UTC), "MARKET_HOLIDAY"),  # Saturday
    ],
)
def test_exits_outside_the_session_are_rejected(
    engine: Engine, clock: ManualClock, now: datetime, code: str
) -> None:
    trade_id = seed(engine)
    clock.set(now)
    result = service(engine, clock).on_exit_detected(candidate(trade_id, at=now))
    assert (result.outcome, result.reason_codes) == (ExitOutcome.REJECTED, (code,))


def test_a_special_session_opens_the_exit_window(engine: Engine, clock: ManualClock) -> None:
    trade_id = seed(engine)
    saturday = date(2026, 11, 28)
    calendar = nse_calendar().with_special_session(saturday, time(18, 0), time(19, 0), "muhurat")
    clock.set(datetime(2026, 11, 28, 12, 40, tzinfo=UTC))  # 18:10 IST
    svc = ExitIntentService(engine, clock, calendar, settings=ExitSettings(cooldown=COOLDOWN))
    assert svc.on_exit_detected(candidate(trade_id)).outcome is ExitOutcome.APPROVED


def test_portfolio_lock_and_trade_freeze(engine: Engine, clock: ManualClock) -> None:
    holds = InMemoryExitHolds()
    locked, frozen = seed(engine), seed(engine)
    with engine.connect() as conn:
        owner = (
            conn.execute(Trade.__table__.select().where(Trade.id == locked)).one().user_broker_id
        )
    holds.lock_portfolio(owner)
    holds.freeze_trade(frozen)
    svc = service(engine, clock, holds=holds)
    assert svc.on_exit_detected(candidate(locked)).reason_codes == ("PORTFOLIO_LOCKED",)
    assert svc.on_exit_detected(candidate(frozen)).reason_codes == ("TRADE_FROZEN",)


def test_a_closed_trade_is_rejected(engine: Engine, clock: ManualClock) -> None:
    trade_id = seed(engine, status="CLOSED")
    result = service(engine, clock).on_exit_detected(candidate(trade_id))
    assert result.reason_codes == ("TRADE_NOT_OPEN",)


def test_bad_input_writes_nothing(engine: Engine, clock: ManualClock) -> None:
    trade_id = seed(engine)
    svc = service(engine, clock)
    before = counts(engine)
    with pytest.raises(NotFoundError):
        svc.on_exit_detected(candidate(trade_id + 1000))
    with pytest.raises(InvalidInputError):
        svc.on_exit_detected(candidate(trade_id, price="94.97"))  # off the 0.05 tick
    with pytest.raises(InvalidInputError):
        svc.on_exit_detected({"trade_id": trade_id})  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        candidate(trade_id, at=datetime(2026, 11, 25, 9, 30))  # noqa: DTZ001 - naive
    with pytest.raises(InvalidInputError):
        candidate(trade_id, reason="PANIC")  # type: ignore[arg-type]
    assert counts(engine) == before


def test_caller_transaction_rolls_back_everything(engine: Engine, clock: ManualClock) -> None:
    trade_id = seed(engine)
    before = counts(engine)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), engine.begin() as conn:
        result = service(engine, clock).on_exit_detected(candidate(trade_id), connection=conn)
        assert result.outcome is ExitOutcome.APPROVED
        raise Boom
    assert counts(engine) == before


def test_replay_finishes_detected_signals_and_pending_intents_once(
    engine: Engine, clock: ManualClock
) -> None:
    crashed, pending = seed(engine), seed(engine)
    svc = service(engine, clock)
    svc.on_exit_detected(candidate(pending))
    with engine.begin() as conn, rewinding_exit_intents(conn):  # as a crash would leave them
        conn.execute(
            insert(ExitSignal),
            {
                "trade_id": crashed,
                "exit_reason": "STOP_LOSS",
                "episode_id": 1,
                "status": "DETECTED",
                "price": Decimal("94.95"),
                "detected_at": AT,
                "created_at": AT,
            },
        )
        conn.execute(
            update(ExitIntent)
            .where(ExitIntent.trade_id == pending)
            .values(status="PENDING", reason_codes=[])
        )
    first = svc.replay()
    assert (first.signals_finished, first.intents_decided) == (1, 1)
    second = service(engine, clock).replay()
    assert (second.signals_finished, second.intents_decided) == (0, 0)
    assert {i.status for i in rows(engine, ExitIntent)} == {"APPROVED"}
    assert {s.status for s in rows(engine, ExitSignal)} == {"PUBLISHED"}
    assert sorted(event_types(engine)) == sorted(
        ["EXIT_SIGNAL_PUBLISHED", "EXIT_INTENT_APPROVED"] * 2
    )
