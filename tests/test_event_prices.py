"""Issue 11: every price and amount in every event payload is one plain decimal string
(no trailing zeros, no exponent), the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select

from entry_world import at, make_world
from loop_support import start_tms
from signal_mgmt.execution.simulated import SimulatedBroker
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import OutboxRow, Trade
from signal_mgmt.outbox.events import EventPayload

NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")


class Priced(EventPayload):
    price: Decimal
    pnl: Decimal | None


def test_a_payload_writes_its_decimals_plain() -> None:
    dumped = Priced(price=Decimal("102.00"), pnl=Decimal("1E+2")).model_dump(mode="json")
    assert dumped == {"price": "102", "pnl": "100"}
    assert Priced(price=Decimal("97.70"), pnl=None).model_dump(mode="json")["price"] == "97.7"


def numbers(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from numbers(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from numbers(item, f"{path}[{index}]")
    elif isinstance(value, str) and NUMBER.match(value):
        yield path, value


def test_every_event_of_a_trade_carries_plain_prices(engine: Engine, clock: ManualClock) -> None:
    """A signal with two-decimal bounds, an entry, a target exit and a close with P&L."""
    clock.set(at(10, 0))
    world = make_world(engine, clock, users=1, tcs_only=False)
    broker = SimulatedBroker({"INFY": Decimal("100")})
    loop, entry = start_tms(engine, clock, broker)
    entry.process(
        world.candidate(effective_floor=Decimal("99.00"), effective_ceiling=Decimal("100.00"))
    )
    loop.run_once()
    with engine.connect() as conn:
        target = conn.execute(select(Trade.target_price)).scalar_one()
    clock.advance(timedelta(minutes=1))
    broker.set_price("INFY", Decimal(target))
    loop.on_tick("INFY", Decimal(target), clock.now())
    loop.run_once()
    with engine.connect() as conn:
        assert conn.execute(select(Trade.status)).scalar_one() == "CLOSED"
        found = conn.execute(select(OutboxRow.event_type, OutboxRow.payload)).all()
    payloads = [(t, json.loads(p) if isinstance(p, str) else p) for t, p in found]
    written = [hit for event_type, p in payloads for hit in numbers(p, event_type)]
    assert {path.split(".")[0] for path, _ in written} >= {
        "SIGNAL_PUBLISHED",
        "TRADE_INTENT_APPROVED",
        "TRADE_OPENED",
        "TRADE_CLOSED",
    }
    not_plain = [(path, text) for path, text in written if "E" in text.upper() or _zero_tail(text)]
    assert not_plain == []


def _zero_tail(text: str) -> bool:
    return "." in text and text.endswith("0")
