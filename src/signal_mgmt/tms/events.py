"""Events of trade opening. Intent events keep the symbol's order (``symbol:<SYMBOL>``);
trade events are keyed ``trade:<id>``, like the EXIT path's, so a trade's whole story
(opened, exit, closed) is published in commit order."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from signal_mgmt.outbox.events import Event, EventPayload
from signal_mgmt.outbox.keys import symbol_key, trade_key

TRADE_INTENT_PLACED = "TRADE_INTENT_PLACED"
TRADE_INTENT_FILLED = "TRADE_INTENT_FILLED"
TRADE_INTENT_FAILED = "TRADE_INTENT_FAILED"
TRADE_OPENED = "TRADE_OPENED"
TRADE_ENTRY_FAILED = "TRADE_ENTRY_FAILED"


class TradeIntentExecuted(EventPayload):
    trade_intent_id: int
    trade_id: int
    symbol: str
    status: str
    filled_quantity: int
    average_price: Decimal | None
    failure_reason: str | None = None


class TradeOpened(EventPayload):
    trade_id: int
    trade_intent_id: int
    user_broker_id: int
    symbol: str
    direction: str
    quantity: int
    entry_price: Decimal
    target_price: Decimal
    stop_price: Decimal
    opened_at: datetime


class TradeEntryFailed(EventPayload):
    trade_id: int
    trade_intent_id: int
    symbol: str
    reason: str


def intent_event(event_type: str, payload: TradeIntentExecuted) -> Event[Any]:
    return Event[Any](
        event_type=event_type,
        aggregate_type="trade_intent",
        aggregate_id=str(payload.trade_intent_id),
        idempotency_key=str(payload.trade_intent_id),
        partition_key=symbol_key(payload.symbol),
        payload=payload,
    )


def trade_event(event_type: str, trade_id: int, payload: EventPayload) -> Event[Any]:
    return Event[Any](
        event_type=event_type,
        aggregate_type="trade",
        aggregate_id=str(trade_id),
        idempotency_key=str(trade_id),
        partition_key=trade_key(trade_id),
        payload=payload,
    )
