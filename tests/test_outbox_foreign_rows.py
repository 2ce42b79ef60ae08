"""Rows a plain-SQL writer inserted with JSON the library never writes (headers or
payload that are null, an array, a string): the relay publishes what it can and
moves what no broker can carry to DEAD; it never crashes, now or after a restart.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from broker_support import redis_keys
from outbox_support import emit_ticks
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.outbox.publishers.redis import RedisStreamPublisher
from signal_mgmt.outbox.relay import OutboxRelay
from signal_mgmt.storage.db import transaction

pytestmark = pytest.mark.brokers

PLAIN_INSERT = """
    INSERT INTO outbox (event_id, event_type, aggregate_type, aggregate_id, partition_key,
                        payload, headers, created_at, available_at, attempts, status)
    VALUES ({uuid}, 'FOREIGN', 'plain', '1', 'plain', {payload}, {headers},
            :now, :now, 0, 'PENDING')
"""


def insert_plain(engine: Engine, clock: ManualClock, payload: str, headers: str) -> None:
    postgres = engine.dialect.name == "postgresql"
    sql = PLAIN_INSERT.format(
        uuid="gen_random_uuid()" if postgres else "lower(hex(randomblob(16)))",
        payload="CAST(:payload AS jsonb)" if postgres else ":payload",
        headers="CAST(:headers AS jsonb)" if postgres else ":headers",
    )
    with transaction(engine) as conn:
        conn.execute(text(sql), {"payload": payload, "headers": headers, "now": clock.now()})


def status_by_key(engine: Engine) -> dict[str, set[str]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT partition_key, status FROM outbox")).all()
    found: dict[str, set[str]] = {}
    for key, status in rows:
        found.setdefault(key, set()).add(status)
    return found


@pytest.mark.parametrize("headers", ["null", "[]", '"s"'])
def test_headers_that_are_no_object_make_that_event_dead_and_the_rest_flow(
    engine: Engine, clock: ManualClock, headers: str
) -> None:
    """The wire format read ``headers.items()`` outside any refusal: AttributeError, relay dead."""
    insert_plain(engine, clock, '{"x": 1}', headers)
    emit_ticks(engine, clock, range(5), key="good")
    with redis_keys() as keys:
        publisher = RedisStreamPublisher(stream_template=keys.prefix)
        try:
            relay = OutboxRelay(engine, publisher, clock=clock, sleep=lambda _: None)
            while relay.run_once():
                pass
            assert OutboxRelay(engine, publisher, clock=clock).run_once() == 0  # a restart
        finally:
            publisher.close()
        assert status_by_key(engine) == {"plain": {"DEAD"}, "good": {"PUBLISHED"}}
        assert len(keys.entries(keys.prefix)) == 5


@pytest.mark.parametrize("payload", ["null", "[1, 2]", '"s"'])
def test_a_payload_of_any_json_is_relayed(engine: Engine, clock: ManualClock, payload: str) -> None:
    insert_plain(engine, clock, payload, "{}")
    with redis_keys() as keys:
        publisher = RedisStreamPublisher(stream_template=keys.prefix)
        try:
            assert OutboxRelay(engine, publisher, clock=clock).run_once() == 1
        finally:
            publisher.close()
        assert status_by_key(engine) == {"plain": {"PUBLISHED"}}
