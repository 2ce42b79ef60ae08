"""Execution-side moves of an exit intent (PLACED / FILLED / FAILED), guarded and announced.

Only the dispatcher and the reconciler call these; they never touch trades.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Connection, select

from signal_mgmt.errors import IllegalTransitionError, NotFoundError
from signal_mgmt.execution.exit_events import (
    EXIT_INTENT_FAILED,
    EXIT_INTENT_FILLED,
    EXIT_INTENT_PLACED,
    ExitIntentExecuted,
    exit_event,
)
from signal_mgmt.market.clock import Clock
from signal_mgmt.models import ExitIntent, ExitIntentStatus
from signal_mgmt.outbox.emit import emit
from signal_mgmt.storage.records import ExitIntentRecord
from signal_mgmt.storage.state import transition

PREEMPTED = "PREEMPTED"
"""Failure reason of a TARGET cancelled because a protective exit pre-empted it."""

IntentErrorHandler = Callable[[int, Exception], None]
"""Told (exit intent id, error) when one intent of a sweep raised; the sweep goes on."""

_R = TypeVar("_R")


def each_intent(
    ids: Iterable[int], run: Callable[[int], _R], on_error: IntentErrorHandler | None
) -> list[_R]:
    """``run`` every id; without ``on_error`` the first error propagates, with it one
    intent's error (a broker or row problem) does not hold back the others'."""
    results: list[_R] = []
    for intent_id in ids:
        if on_error is None:
            results.append(run(intent_id))
            continue
        try:
            results.append(run(intent_id))
        except Exception as error:
            on_error(intent_id, error)
    return results


_EVENTS = {
    ExitIntentStatus.PLACED: EXIT_INTENT_PLACED,
    ExitIntentStatus.FILLED: EXIT_INTENT_FILLED,
    ExitIntentStatus.FAILED: EXIT_INTENT_FAILED,
}
_TERMINAL = {ExitIntentStatus.FILLED, ExitIntentStatus.FAILED}
_ALLOWED_FROM = {
    ExitIntentStatus.PLACED: {ExitIntentStatus.APPROVED},
    ExitIntentStatus.FILLED: {ExitIntentStatus.PLACED},
    ExitIntentStatus.FAILED: {ExitIntentStatus.APPROVED, ExitIntentStatus.PLACED},
}


def load_exit_intent(conn: Connection, intent_id: int) -> ExitIntentRecord:
    row = conn.execute(select(ExitIntent.__table__).where(ExitIntent.id == intent_id)).first()
    if row is None:
        raise NotFoundError("exit_intent", intent_id)
    return ExitIntentRecord.from_row(row)


def move_exit_intent(
    conn: Connection,
    intent: ExitIntentRecord,
    target: ExitIntentStatus,
    clock: Clock,
    *,
    filled_quantity: int | None = None,
    average_fill_price: Decimal | None = None,
    failure_reason: str | None = None,
) -> bool:
    """``intent.status`` -> ``target`` with its event, in the caller's transaction.

    An illegal move raises ``IllegalTransitionError``. Guarded by the status read:
    False (and nothing written) when another worker moved the intent first.
    """
    current = intent.status
    if current not in _ALLOWED_FROM[target]:
        raise IllegalTransitionError(
            "exit_intents",
            intent.id,
            expected="|".join(sorted(_ALLOWED_FROM[target])),
            target=target,
            actual=current,
        )
    now: datetime = clock.now()
    values: dict[str, Any] = {"updated_at": now, "claimed_until": None}
    if target is ExitIntentStatus.PLACED:
        values["placed_at"] = now
    if target in _TERMINAL:
        values["finished_at"] = now
    if filled_quantity is not None:
        values["filled_quantity"] = filled_quantity
        values["average_fill_price"] = average_fill_price
    if failure_reason is not None:
        values["failure_reason"] = failure_reason
    try:
        transition(conn, ExitIntent, intent.id, expected=[current], target=target, values=values)
    except IllegalTransitionError:
        return False
    payload = ExitIntentExecuted(
        exit_intent_id=intent.id,
        trade_id=intent.trade_id,
        status=target.value,
        filled_quantity=intent.filled_quantity if filled_quantity is None else filled_quantity,
        average_fill_price=average_fill_price,
        failure_reason=failure_reason,
    )
    event = exit_event(_EVENTS[target], "exit_intent", intent.id, intent.trade_id, payload)
    emit(conn, [event], clock)
    return True
