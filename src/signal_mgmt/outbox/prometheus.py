"""Optional Prometheus exporter of a relay (extra ``metrics``: ``prometheus-client``).

Read at scrape time from ``RelayThread.health()``, so Prometheus and a host
that polls ``health()`` see the same numbers:

    signal_mgmt_outbox_published_total              counter    events this relay published
    signal_mgmt_outbox_publish_errors_total         counter    failed publish calls
    signal_mgmt_outbox_dead_letters_total           counter    events this relay moved to DEAD
    signal_mgmt_outbox_pending                      gauge      pending events (incl. in flight)
    signal_mgmt_outbox_dead                         gauge      DEAD events in the table
    signal_mgmt_outbox_oldest_pending_age_seconds   gauge      the relay's lag (0 when empty)
    signal_mgmt_outbox_publish_latency_seconds      histogram  emit -> publish
    signal_mgmt_outbox_relay_up                     gauge      1 while the relay loop runs
    signal_mgmt_outbox_publishing_seconds           gauge      age of the batch in hand (0: none)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from signal_mgmt.errors import ConfigError, StorageError
from signal_mgmt.outbox.metrics import LATENCY_BUCKETS

if TYPE_CHECKING:
    from signal_mgmt.outbox.thread import RelayThread

try:
    from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ConfigError(
        f"Prometheus metrics need prometheus-client ({error}); "
        "install it with: pip install 'signal-mgmt[metrics]'"
    ) from None

log = logging.getLogger(__name__)
PREFIX = "signal_mgmt_outbox"


class RelayCollector:
    """A prometheus_client collector reading one relay's health on every scrape."""

    def __init__(self, thread: RelayThread) -> None:
        self._thread = thread

    def collect(self) -> Iterator[Metric]:
        snapshot = self._thread.relay.metrics.snapshot()
        yield _counter("published", "Events published by this relay.", snapshot.published_total)
        yield _counter("publish_errors", "Failed publish calls.", snapshot.publish_errors)
        yield _counter("dead_letters", "Events this relay moved to DEAD.", snapshot.dead_letters)
        yield GaugeMetricFamily(
            f"{PREFIX}_relay_up", "1 while the relay loop runs.", value=self._thread.running
        )
        publishing = snapshot.in_flight
        yield GaugeMetricFamily(
            f"{PREFIX}_publishing_seconds",
            "How long the batch in hand has been publishing, retries included (0: none).",
            value=0.0
            if publishing is None
            else (self._thread.relay.clock.now() - publishing.since).total_seconds(),
        )
        latency = snapshot.latency
        cumulative, buckets = 0, []
        for bound, count in zip((*map(str, LATENCY_BUCKETS), "+Inf"), latency.counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily(
            f"{PREFIX}_publish_latency_seconds",
            "Emit to publish latency of published events.",
            buckets=buckets,
            sum_value=latency.total,
        )
        try:
            health = self._thread.health()
        except StorageError as error:  # no database: the counters above still tell a story
            log.warning("outbox metrics: database unavailable: %s", error)
            return
        yield GaugeMetricFamily(
            f"{PREFIX}_pending",
            "Pending events, in flight included.",
            value=health.pending + health.in_flight,
        )
        yield GaugeMetricFamily(f"{PREFIX}_dead", "DEAD events in the outbox.", value=health.dead)
        yield GaugeMetricFamily(
            f"{PREFIX}_oldest_pending_age_seconds",
            "Age of the oldest pending event (the relay's lag).",
            value=health.lag,
        )


def register_metrics(
    thread: RelayThread, registry: CollectorRegistry | None = None
) -> RelayCollector:
    """Register ``thread``'s metrics in ``registry`` (default: the global one)."""
    collector = RelayCollector(thread)
    (registry or REGISTRY).register(collector)
    return collector


def serve_metrics(thread: RelayThread, port: int, addr: str = "0.0.0.0") -> None:
    """Expose ``thread``'s metrics over HTTP at ``addr:port/metrics``."""
    registry = CollectorRegistry()
    register_metrics(thread, registry)
    start_http_server(port, addr=addr, registry=registry)


def _counter(name: str, documentation: str, value: int) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", documentation, value=value)
