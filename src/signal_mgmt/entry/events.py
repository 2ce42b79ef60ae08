"""Events of the entry path. All carry ``symbol:<SYMBOL>`` as partition key (per-symbol order).

Built with ``Event.trusted``: every field is the service's own, from a validated
candidate or a row it has just written."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from signal_mgmt.outbox.events import Event, EventPayload
from signal_mgmt.outbox.keys import symbol_key

SIGNAL_PUBLISHED = "SIGNAL_PUBLISHED"
SIGNAL_DELIVERY_CREATED = "SIGNAL_DELIVERY_CREATED"


class SignalPublished(EventPayload):
    signal_id: int
    symbol: str
    direction: str
    confluence_type: str
    signal_day: date
    effective_floor: Decimal
    effective_ceiling: Decimal
    detected_at: datetime
    delivery_count: int


class SignalDeliveryCreated(EventPayload):
    delivery_id: int
    signal_id: int
    user_broker_id: int
    symbol: str


# Parametrized once: ``Event[X]`` looks its class up in pydantic's generic cache per use.
_PublishedEvent = Event[SignalPublished]
_DeliveryEvent = Event[SignalDeliveryCreated]


def signal_published(payload: SignalPublished) -> Event[SignalPublished]:
    return _PublishedEvent.trusted(
        event_type=SIGNAL_PUBLISHED,
        aggregate_type="signal",
        aggregate_id=str(payload.signal_id),
        idempotency_key=str(payload.signal_id),
        partition_key=symbol_key(payload.symbol),
        payload=payload,
    )


def delivery_created(payload: SignalDeliveryCreated) -> Event[SignalDeliveryCreated]:
    return _DeliveryEvent.trusted(
        event_type=SIGNAL_DELIVERY_CREATED,
        aggregate_type="signal_delivery",
        aggregate_id=str(payload.delivery_id),
        idempotency_key=str(payload.delivery_id),
        partition_key=symbol_key(payload.symbol),
        payload=payload,
    )
