"""A small trading world for ENTRY tests: instruments, user-brokers, subscriptions, services."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from signal_mgmt.entry.candidate import SignalCandidate
from signal_mgmt.entry.service import SignalService
from signal_mgmt.market.calendar import nse_calendar
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import SizingMode
from signal_mgmt.reference import InstrumentSpec, ReferenceAdmin, UserBrokerSpec

SYMBOLS = ("INFY", "TCS", "RELIANCE")


@dataclass
class World:
    engine: Engine
    clock: ManualClock
    admin: ReferenceAdmin
    signals: SignalService
    user_brokers: list[int] = field(default_factory=list)

    def candidate(self, symbol: str = "INFY", **overrides: Any) -> SignalCandidate:
        values: dict[str, Any] = {
            "symbol": symbol,
            "direction": "LONG",
            "confluence_type": "VWAP",
            "detected_at": self.clock.now() - timedelta(seconds=5),
            "effective_floor": Decimal("99.00"),
            "effective_ceiling": Decimal("100.00"),
            **overrides,
        }
        return SignalCandidate(**values)

    def add_user(self, name: str, **spec: Any) -> int:
        values: dict[str, Any] = {
            "user_id": name,
            "broker": "SIM",
            "available_capital": Decimal(1_000_000),
            "sizing_mode": SizingMode.FIXED_QUANTITY,
            "fixed_quantity": 10,
            **spec,
        }
        user_broker = self.admin.add_user_broker(UserBrokerSpec(**values))
        self.user_brokers.append(user_broker)
        return user_broker


def make_world(
    engine: Engine, clock: ManualClock, users: int = 2, *, tcs_only: bool = True
) -> World:
    """``users`` user-brokers subscribed to everything, plus one subscribed to TCS only."""
    admin = ReferenceAdmin(engine, clock)
    admin.add_instruments(
        [
            InstrumentSpec(symbol="INFY", tick_size=Decimal("0.05"), lot_size=1),
            InstrumentSpec(symbol="TCS", tick_size=Decimal("0.10"), lot_size=5),
            InstrumentSpec(
                symbol="RELIANCE", tick_size=Decimal("0.05"), lot_size=1, freeze_quantity=4
            ),
        ]
    )
    world = World(engine, clock, admin, SignalService(engine, clock, nse_calendar()))
    for n in range(users):
        admin.subscribe(world.add_user(f"user{n}"))
    if tcs_only:
        admin.subscribe(world.add_user("tcs-only"), symbol="TCS")
    return world


def at(hour: int, minute: int) -> datetime:
    """2026-11-25 (a Wednesday) at an Asia/Kolkata wall time, as aware UTC."""
    return nse_calendar().at_local(date(2026, 11, 25), time(hour, minute))
