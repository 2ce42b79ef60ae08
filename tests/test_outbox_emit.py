"""emit: fan-out beyond one statement's rows, duplicates inside one call, the watermark column."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from outbox_support import tick
from signal_mgmt.db import transaction
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import OutboxRow
from signal_mgmt.outbox.emit import MAX_ROWS_PER_INSERT, emit


def test_fan_out_larger_than_one_insert(engine: Engine, clock: ManualClock) -> None:
    total = MAX_ROWS_PER_INSERT * 2 + 7
    with transaction(engine) as conn:
        emit(conn, [tick(n, key=f"k{n % 13}") for n in range(total)], clock)
    with engine.connect() as conn:
        payloads = conn.execute(select(OutboxRow.payload).order_by(OutboxRow.id)).scalars()
        ns = [payload["n"] for payload in payloads]
    assert ns == list(range(total))  # ids follow the order of the events given


def test_the_same_event_twice_in_one_call_is_one_row(engine: Engine, clock: ManualClock) -> None:
    with transaction(engine) as conn:
        ids = emit(conn, [tick(1), tick(2), tick(1)], clock)
    assert ids[0] == ids[2]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(OutboxRow)).scalar_one() == 2


@pytest.mark.postgres_only
def test_each_row_records_its_writing_transaction(engine: Engine, clock: ManualClock) -> None:
    with transaction(engine) as conn:
        emit(conn, [tick(1), tick(2)], clock)
        current = conn.exec_driver_sql("SELECT pg_current_xact_id()::text::bigint").scalar()
    with engine.connect() as conn:
        assert set(conn.execute(select(OutboxRow.xact_id)).scalars()) == {current}
