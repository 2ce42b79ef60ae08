"""The Prometheus exporter shows the numbers that RelayThread.health() returns."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import Engine

from outbox_support import emit_ticks
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.outbox.prometheus import register_metrics
from signal_mgmt.outbox.publishers import InMemoryPublisher
from signal_mgmt.outbox.relay import OutboxRelay
from signal_mgmt.outbox.thread import RelayThread

PREFIX = "signal_mgmt_outbox"


def test_exporter_matches_health(engine: Engine, clock: ManualClock) -> None:
    publisher = InMemoryPublisher()
    relay = OutboxRelay(engine, publisher, clock=clock, max_attempts=2, sleep=lambda _s: None)
    thread = RelayThread(relay)  # not started: run_once is driven by hand
    registry = CollectorRegistry()
    register_metrics(thread, registry)

    emit_ticks(engine, clock, [1, 2], key="a")
    clock.advance(timedelta(seconds=2))
    relay.run_once()  # both published, 2 s after emit
    emit_ticks(engine, clock, [3], key="b")
    publisher.fail_next(1, transient=False)
    relay.run_once()  # refused for good: DEAD
    emit_ticks(engine, clock, [4], key="c")
    clock.advance(timedelta(seconds=7))

    health = thread.health()
    sample = registry.get_sample_value
    assert sample(f"{PREFIX}_published_total") == health.published_total == 2
    assert sample(f"{PREFIX}_publish_errors_total") == health.publish_errors == 1
    assert sample(f"{PREFIX}_dead_letters_total") == health.dead_letters == 1
    assert sample(f"{PREFIX}_dead") == health.dead == 1
    assert sample(f"{PREFIX}_pending") == health.pending == 1
    assert sample(f"{PREFIX}_oldest_pending_age_seconds") == health.lag == 7.0
    assert sample(f"{PREFIX}_relay_up") == 0.0
    assert sample(f"{PREFIX}_publishing_seconds") == 0.0  # no batch in hand
    assert sample(f"{PREFIX}_publish_latency_seconds_count") == 2
    assert sample(f"{PREFIX}_publish_latency_seconds_sum") == health.latency.total == 4.0
    assert sample(f"{PREFIX}_publish_latency_seconds_bucket", {"le": "1.0"}) == 0
    assert sample(f"{PREFIX}_publish_latency_seconds_bucket", {"le": "5.0"}) == 2
    assert b"signal_mgmt_outbox_published_total 2.0" in generate_latest(registry)
