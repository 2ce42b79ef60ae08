"""Clock skew between writers, operators and relays (PostgreSQL: one server clock).

A writer's clock 30 s ahead stored ``available_at`` 30 s in the relay's future: its
key was held 30 s. With the system clock, "due now" is the server's clock on both
sides; a ``ManualClock`` stays the clock of tests and replays.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine

from outbox_support import emit_ticks, event_ids_by_n, statuses
from signal_mgmt.market.clock import SystemClock
from signal_mgmt.outbox import store
from signal_mgmt.outbox.publishers import InMemoryPublisher
from signal_mgmt.outbox.relay import OutboxRelay

pytestmark = pytest.mark.postgres_only


class AheadClock(SystemClock):
    """A host whose wall clock runs 30 s ahead of the database server's."""

    def now(self) -> datetime:
        return super().now() + timedelta(seconds=30)


def test_a_writer_ahead_of_the_relay_holds_nothing_back(engine: Engine) -> None:
    emit_ticks(engine, AheadClock(), [1], key="K")
    relay = OutboxRelay(engine, InMemoryPublisher(), clock=SystemClock())
    assert relay.run_once() == 1


def test_an_operator_ahead_of_the_relay_holds_nothing_back(engine: Engine) -> None:
    emit_ticks(engine, SystemClock(), [1], key="K")
    publisher = InMemoryPublisher()
    publisher.fail_next(1, transient=False)
    relay = OutboxRelay(engine, publisher, clock=SystemClock())
    relay.run_once()
    assert statuses(engine) == {1: "DEAD"}
    store.retry_dead(engine, AheadClock(), event_ids_by_n(engine)[1])
    assert relay.run_once() == 1
