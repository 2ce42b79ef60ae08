"""The EXIT path's outbox events. Every one is keyed ``trade:<id>`` so a trade's exit
story (signal, decision, placement, fill, close) is published in commit order."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from signal_mgmt.outbox.events import Event, EventPayload
from signal_mgmt.outbox.keys import trade_key

EXIT_SIGNAL_PUBLISHED = "EXIT_SIGNAL_PUBLISHED"
EXIT_INTENT_APPROVED = "EXIT_INTENT_APPROVED"
EXIT_INTENT_REJECTED = "EXIT_INTENT_REJECTED"
EXIT_INTENT_PLACED = "EXIT_INTENT_PLACED"
EXIT_INTENT_FILLED = "EXIT_INTENT_FILLED"
EXIT_INTENT_FAILED = "EXIT_INTENT_FAILED"


class ExitSignalPublished(EventPayload):
    exit_signal_id: int
    trade_id: int
    exit_reason: str
    episode_id: int
    price: Decimal
    detected_at: datetime


class ExitIntentDecided(EventPayload):
    exit_intent_id: int
    exit_signal_id: int
    trade_id: int
    user_broker_id: int
    exit_reason: str
    episode_id: int
    status: str
    reason_codes: list[str]
    quantity: int
    order_type: str
    limit_price: Decimal | None
    slices: list[int]


class ExitIntentExecuted(EventPayload):
    exit_intent_id: int
    trade_id: int
    status: str
    filled_quantity: int
    average_fill_price: Decimal | None
    failure_reason: str | None


_ExitEvent = Event[Any]  # parametrized once, not looked up per event


def exit_event(
    event_type: str, aggregate: str, aggregate_id: int, trade_id: int, payload: EventPayload
) -> Event[Any]:
    """One event per (type, row): a replayed transition re-announces nothing new. Built
    without validation (``Event.trusted``): every field is the library's own."""
    return _ExitEvent.trusted(
        event_type=event_type,
        aggregate_type=aggregate,
        aggregate_id=str(aggregate_id),
        idempotency_key=f"{aggregate}:{aggregate_id}",
        partition_key=trade_key(trade_id),
        payload=payload,
    )
