"""Worker processes for the multi-process ENTRY tests (module-level, so "spawn" can import)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from signal_mgmt.entry import EntryCoordinator, SignalCandidate, SignalService
from signal_mgmt.entry.qualification import EntryQualificationService
from signal_mgmt.market.calendar import nse_calendar
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.storage.db import make_engine


def publish_all(
    url: str, now: str, candidates: list[dict[str, Any]], barrier: Any, out: Any
) -> None:
    """Wait for every sibling, then publish and qualify the same candidates; report what was new."""
    engine = make_engine(url)
    clock = ManualClock(datetime.fromisoformat(now))
    calendar = nse_calendar()
    coordinator = EntryCoordinator(
        SignalService(engine, clock, calendar),
        EntryQualificationService(engine, clock, calendar),
        lanes=1,
    )
    created: list[tuple[int, bool, int]] = []
    try:
        barrier.wait(timeout=60)
        for values in candidates:
            outcome = coordinator.process(SignalCandidate(**values))
            new_intents = sum(1 for intent in outcome.intents if intent.created)
            created.append((outcome.published.signal_id, outcome.published.created, new_intents))
    finally:
        coordinator.close()
        engine.dispose()
    out.put(created)
