"""The lease's limit: a relay that outlives its lease causes re-deliveries, never a reordering.

A relay hangs inside ``publish`` past its lease; another relay runs meanwhile. SQLite: it
takes the key over; whether the hung relay's copy goes out before or after the takeover,
every event's FIRST delivery is in id order (what ``docs/outbox.md`` promises); only a
re-delivery may arrive after later events of its key, and consumers drop it by ``event_id``.
PostgreSQL: the hung relay's key lock keeps the key with it (no clock lease), so the other
relay takes nothing and there is no re-delivery at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from outbox_support import assert_key_order, emit_ticks, statuses
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.outbox.events import OutboxMessage
from signal_mgmt.outbox.publishers import InMemoryPublisher
from signal_mgmt.outbox.relay import OutboxRelay

LEASE = timedelta(seconds=5)


class HangsPastItsLease:
    """Publishes to ``broker``; on its first call the relay hangs past its lease, and
    another relay (same broker) drains meanwhile, before or after this copy went out."""

    def __init__(
        self, engine: Engine, clock: ManualClock, broker: InMemoryPublisher, *, late: bool
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.broker = broker
        self.late = late
        self.hung = False

    def publish(self, messages: Sequence[OutboxMessage]) -> None:
        if not self.late:
            self.broker.publish(messages)
        if not self.hung:
            self.hung = True
            self.clock.advance(LEASE + timedelta(seconds=1))
            other = OutboxRelay(self.engine, self.broker, clock=self.clock, lease=LEASE)
            while other.run_once():
                pass
        if self.late:
            self.broker.publish(messages)


@pytest.mark.parametrize(
    ("late", "delivered"),
    [(True, [1, 2, 3, 1]), (False, [1, 1, 2, 3])],
    ids=["hung-copy-after-takeover", "hung-copy-before-takeover"],
)
def test_a_relay_that_outlives_its_lease_only_causes_re_deliveries(
    engine: Engine, clock: ManualClock, late: bool, delivered: list[int]
) -> None:
    emit_ticks(engine, clock, [1, 2, 3], key="a")
    broker = InMemoryPublisher()
    hung = HangsPastItsLease(engine, clock, broker, late=late)
    # batch_size=1: the hung relay holds only the key's head, so the taker must
    # re-claim that head before it may publish the key's later events.
    relay = OutboxRelay(engine, hung, clock=clock, batch_size=1, lease=LEASE)
    assert relay.run_once() == 1
    if engine.dialect.name == "postgresql":
        assert [m.payload["n"] for m in broker.messages] == [1]
        while relay.run_once():
            pass
        delivered = [1, 2, 3]
    assert [m.payload["n"] for m in broker.messages] == delivered
    assert_key_order(broker.messages)  # first deliveries in id order
    assert statuses(engine) == {1: "PUBLISHED", 2: "PUBLISHED", 3: "PUBLISHED"}
