"""Round trips of the hot write paths on PostgreSQL (issue 14), counted per call.

Each figure is the minimum the guarantees need: publish = symbol lock, instrument,
signal + audience + deliveries, outbox; on_exit_detected = trade lock, trade, a
signal still waiting for a pre-empted target, episode, the trade's exit intents,
signal, intent, outbox.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event

from entry_world import make_world
from exit_support import candidate, seed
from signal_mgmt.exit.service import ExitIntentService, ExitOutcome
from signal_mgmt.market.clock import ManualClock


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(*args: Any) -> None:
        seen.append(args[2])

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def count(engine: Engine, call: Callable[[], object]) -> int:
    with statements(engine) as seen:
        call()
    return len(seen)


@pytest.mark.postgres_only
def test_publish_is_four_statements(engine: Engine, clock: ManualClock) -> None:
    world = make_world(engine, clock)
    published = []
    assert count(engine, lambda: published.append(world.signals.publish(world.candidate()))) == 4
    assert (published[0].created, len(published[0].delivery_ids)) == (True, 2)


@pytest.mark.postgres_only
def test_an_approved_exit_is_eight_statements(engine: Engine, clock: ManualClock) -> None:
    trade_id = seed(engine)
    service = ExitIntentService(engine, clock)
    results = []
    assert count(engine, lambda: results.append(service.on_exit_detected(candidate(trade_id)))) == 8
    assert results[0].outcome is ExitOutcome.APPROVED
