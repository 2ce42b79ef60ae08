"""The ENTRY tables hold their idempotency keys on both backends."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, insert, select

from signal_mgmt.errors import IntegrityViolation
from signal_mgmt.models import Signal, SignalStatus
from signal_mgmt.storage.db import transaction

AT = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


def signal_row(floor: str = "100.05", ceiling: str = "101.00") -> dict[str, object]:
    return {
        "symbol": "INFY",
        "direction": "LONG",
        "confluence_type": "VWAP",
        "signal_day": date(2026, 11, 25),
        "effective_floor": Decimal(floor),
        "effective_ceiling": Decimal(ceiling),
        "status": SignalStatus.DETECTED.value,
        "detected_at": AT,
        "metadata": {"source": "test"},  # Core inserts take column names
        "created_at": AT,
    }


def test_signal_key_is_unique(engine: Engine) -> None:
    with transaction(engine) as conn:
        conn.execute(insert(Signal), [signal_row()])
    with pytest.raises(IntegrityViolation), transaction(engine) as conn:
        conn.execute(insert(Signal), [signal_row()])
    with transaction(engine) as conn:
        conn.execute(insert(Signal), [signal_row(floor="100.10")])
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Signal)).scalar_one() == 2
        stored = conn.execute(select(Signal.signal_metadata, Signal.effective_floor)).first()
    assert stored is not None
    assert tuple(stored) == ({"source": "test"}, Decimal("100.05"))
