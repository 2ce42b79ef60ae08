"""What a relay counts: read by ``RelayThread.health()`` and the Prometheus exporter."""

from __future__ import annotations

import bisect
import dataclasses
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from signal_mgmt.outbox.events import OutboxMessage

LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0)
"""Upper bounds (seconds) of the commit->publish latency histogram."""


@dataclass(frozen=True)
class LatencyHistogram:
    """Per-bucket counts (not cumulative): ``counts[i]`` counts ``<= LATENCY_BUCKETS[i]``;
    the last one counts the rest."""

    counts: tuple[int, ...]
    total: float
    observations: int


@dataclass(frozen=True)
class InFlightBatch:
    """The batch a relay is publishing right now."""

    events: int
    first_event_id: uuid.UUID
    since: datetime
    """When the relay started publishing it (retries included)."""
    tries: int = 0
    """Failed publish calls so far."""
    last_error: str | None = None
    """Why the last try failed (exception class and message, credentials masked)."""


@dataclass(frozen=True)
class MetricsSnapshot:
    published_total: int
    publish_errors: int
    dead_letters: int
    last_success: datetime | None
    latency: LatencyHistogram
    in_flight: InFlightBatch | None


class RelayMetrics:
    """Thread-safe counters, updated by the relay, read by anyone."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._published = 0
        self._errors = 0
        self._dead = 0
        self._last_success: datetime | None = None
        self._buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self._latency_sum = 0.0
        self._latency_count = 0
        self._in_flight: InFlightBatch | None = None

    def publishing(self, messages: Sequence[OutboxMessage], now: datetime) -> None:
        """A publish of ``messages`` starts (and, with its retries, lasts until ``settled``)."""
        with self._lock:
            self._in_flight = InFlightBatch(len(messages), messages[0].event_id, now)

    def settled(self) -> None:
        with self._lock:
            self._in_flight = None

    def published(self, messages: Sequence[OutboxMessage], now: datetime) -> None:
        """Count a delivered batch; latency runs from the event's ``created_at`` (emit time)."""
        with self._lock:
            self._published += len(messages)
            self._last_success = now
            for message in messages:
                seconds = max(0.0, (now - message.created_at).total_seconds())
                self._buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
                self._latency_sum += seconds
                self._latency_count += 1

    def publish_failed(self, cause: str) -> None:
        with self._lock:
            self._errors += 1
            if self._in_flight is not None:
                tries = self._in_flight.tries + 1
                self._in_flight = dataclasses.replace(
                    self._in_flight, tries=tries, last_error=cause
                )

    def dead(self, count: int) -> None:
        with self._lock:
            self._dead += count

    def snapshot(self) -> MetricsSnapshot:
        with self._lock:
            return MetricsSnapshot(
                published_total=self._published,
                publish_errors=self._errors,
                dead_letters=self._dead,
                last_success=self._last_success,
                latency=LatencyHistogram(
                    tuple(self._buckets), self._latency_sum, self._latency_count
                ),
                in_flight=self._in_flight,
            )
