"""Migration 0007: an exit intent moves only by its state machine, whoever writes (both
backends): a table owner's hand-typed UPDATE is refused like a role's."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError

from exit_support import candidate, seed
from signal_mgmt.execution.exit_dispatcher import ExitIntentDispatcher
from signal_mgmt.execution.exit_reconciler import Reconciler
from signal_mgmt.execution.simulated import SimulatedBroker
from signal_mgmt.exit.service import ExitIntentService
from signal_mgmt.market import ManualClock
from signal_mgmt.models import ExitIntent, ExitIntentStatus, ExitReason

FILLED_REWRITES = ["PENDING", "APPROVED", "REJECTED", "PLACED", "FAILED"]


def filled_exit(engine: Engine, clock: ManualClock) -> int:
    """A trade of 10 sold by one FILLED stop-loss exit intent; its id."""
    trade = seed(engine)
    clock.advance(timedelta(minutes=1))
    ExitIntentService(engine, clock).on_exit_detected(
        candidate(trade, ExitReason.STOP_LOSS, "94.95", clock.now())
    )
    broker = SimulatedBroker({"INFY": Decimal("94.95")})
    ExitIntentDispatcher(engine, broker, clock, sleep=lambda _: None).dispatch_pending()
    Reconciler(engine, broker, clock).reconcile_placed()
    with engine.connect() as conn:
        intent_id, status = conn.execute(select(ExitIntent.id, ExitIntent.status)).one()
    assert status is ExitIntentStatus.FILLED  # reached by the legal moves
    return int(intent_id)


@pytest.mark.parametrize("target", FILLED_REWRITES)
def test_a_filled_exit_intent_keeps_its_status(
    engine: Engine, clock: ManualClock, target: str
) -> None:
    intent_id = filled_exit(engine, clock)
    with pytest.raises(IntegrityError, match="state machine"), engine.begin() as conn:
        conn.execute(
            text("UPDATE exit_intents SET status = :s WHERE id = :i"), {"s": target, "i": intent_id}
        )


def test_the_quantity_changes_only_while_pending(engine: Engine, clock: ManualClock) -> None:
    intent_id = filled_exit(engine, clock)
    with pytest.raises(IntegrityError, match="state machine"), engine.begin() as conn:
        conn.execute(text("UPDATE exit_intents SET quantity = 1 WHERE id = :i"), {"i": intent_id})
    with engine.begin() as conn:  # an unchanged quantity and other columns stay writable
        conn.execute(
            text(
                "UPDATE exit_intents SET quantity = quantity, updated_at = updated_at WHERE id = :i"
            ),
            {"i": intent_id},
        )
