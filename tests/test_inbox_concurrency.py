"""Two consumers handle the same event at the same moment (PostgreSQL).

The second INSERT must wait on the first one's uncommitted inbox row, then skip
if the first commits, or handle the event itself if the first rolls back.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import Connection, Engine, text

from broker_support import message
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.outbox.inbox import Inbox
from signal_mgmt.storage.db import make_engine

WAIT = 30.0  # a guard against a hung test, never reached when the code is right


class Boom(Exception):
    pass


def wait_until_blocked_on_a_lock(engine: Engine, application_name: str) -> None:
    """Wait for the condition "that session waits on a row lock", bounded by WAIT."""
    deadline = time.monotonic() + WAIT
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE application_name = :name AND wait_event_type = 'Lock'"
    )
    with engine.connect() as conn:
        while conn.execute(query, {"name": application_name}).scalar_one() == 0:
            assert time.monotonic() < deadline, "the second consumer never blocked"
            conn.rollback()
            time.sleep(0.005)


@pytest.mark.postgres_only
@pytest.mark.parametrize("first_outcome", ["commit", "rollback"])
def test_concurrent_handling_of_one_event(
    engine: Engine, database_url: str, clock: ManualClock, first_outcome: str
) -> None:
    msg = message(1)
    consumer = f"race-{uuid.uuid4().hex[:8]}"
    inside, release = threading.Event(), threading.Event()
    ran: list[str] = []
    results: dict[str, object] = {}

    def first_handler(conn: Connection) -> None:
        ran.append("first")
        inside.set()
        assert release.wait(WAIT)
        if first_outcome == "rollback":
            raise Boom

    def run_first() -> None:
        try:
            results["first"] = Inbox(engine, consumer, clock).handle(msg, first_handler)
        except Boom as error:
            results["first"] = error

    second_name = f"second-{uuid.uuid4().hex[:8]}"
    second_engine = make_engine(database_url, connect_args={"application_name": second_name})

    def run_second() -> None:
        results["second"] = Inbox(second_engine, consumer, clock).handle(
            msg, lambda conn: ran.append("second")
        )

    first = threading.Thread(target=run_first)
    first.start()
    assert inside.wait(WAIT)
    second = threading.Thread(target=run_second)
    second.start()
    wait_until_blocked_on_a_lock(engine, second_name)
    release.set()
    first.join(WAIT)
    second.join(WAIT)
    second_engine.dispose()

    if first_outcome == "commit":
        assert ran == ["first"]
        assert results == {"first": True, "second": False}
    else:
        assert ran == ["first", "second"]
        assert isinstance(results["first"], Boom)
        assert results["second"] is True
    assert Inbox(engine, consumer, clock).seen(msg)
