"""Events of entry qualification and of the trade-intent lifecycle."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from signal_mgmt.outbox.events import Event, EventPayload
from signal_mgmt.outbox.keys import symbol_key

TRADE_INTENT_APPROVED = "TRADE_INTENT_APPROVED"
TRADE_INTENT_REJECTED = "TRADE_INTENT_REJECTED"


class TradeIntentDecided(EventPayload):
    trade_intent_id: int
    delivery_id: int
    signal_id: int
    user_broker_id: int
    symbol: str
    direction: str
    decision: str
    reason_codes: list[str]
    quantity: int
    entry_price: Decimal | None
    target_price: Decimal | None
    stop_price: Decimal | None


def intent_decided(payload: TradeIntentDecided) -> Event[Any]:
    event_type = f"TRADE_INTENT_{payload.decision}"
    return Event[TradeIntentDecided](
        event_type=event_type,
        aggregate_type="trade_intent",
        aggregate_id=str(payload.trade_intent_id),
        idempotency_key=str(payload.trade_intent_id),
        partition_key=symbol_key(payload.symbol),
        payload=payload,
    )
