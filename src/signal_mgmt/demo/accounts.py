"""The demo's cast: which symbols trade, which user-brokers take signals, and how.

User-brokers are generated from a few profiles that differ in the ways
qualification cares about: capital, limits, sizing mode and entry window, and
what they subscribe to. Everything is written through ``ReferenceAdmin``, the
same small API a host uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import time
from decimal import Decimal

from sqlalchemy import Engine

from signal_mgmt.demo.sample import SampleInstrument
from signal_mgmt.errors import InvalidInputError
from signal_mgmt.market.clock import Clock
from signal_mgmt.models import ANY, SizingMode
from signal_mgmt.reference.admin import InstrumentSpec, ReferenceAdmin, UserBrokerSpec

FUTURES = "FUT"


def pick_symbols(sample: Sequence[SampleInstrument], count: int) -> list[SampleInstrument]:
    """``count`` instruments, about one in five a future, so every run has both kinds."""
    if not 1 <= count <= len(sample):
        raise InvalidInputError(
            f"--symbols must be between 1 and {len(sample)}", field="symbols", value=count
        )
    futures = [item for item in sample if item.segment == FUTURES]
    equities = [item for item in sample if item.segment != FUTURES]
    wanted_futures = min(len(futures), max(1, count // 5) if count > 1 else 0)
    wanted_equities = count - wanted_futures
    if wanted_equities > len(equities):
        wanted_futures += wanted_equities - len(equities)
        wanted_equities = len(equities)
    return equities[:wanted_equities] + futures[:wanted_futures]


@dataclass(frozen=True, slots=True)
class Profile:
    """A kind of trader; ``symbols`` says what it subscribes to (ANY, or a segment)."""

    name: str
    spec: UserBrokerSpec
    symbols: str = ANY


_MORNING = (time(9, 30), time(14, 30))

PROFILES: tuple[Profile, ...] = (
    Profile(
        "risk-based, mid capital",
        UserBrokerSpec(
            user_id="u",
            broker="zerodha",
            available_capital=Decimal(1_000_000),
            sizing_mode=SizingMode.RISK_PER_TRADE,
            risk_amount=Decimal(2_000),
            max_open_trades=5,
            max_exposure_per_symbol=Decimal(300_000),
        ),
    ),
    Profile(
        "fixed capital, morning window",
        UserBrokerSpec(
            user_id="u",
            broker="upstox",
            available_capital=Decimal(500_000),
            sizing_mode=SizingMode.FIXED_CAPITAL,
            fixed_capital=Decimal(100_000),
            max_open_trades=4,
            entry_window_start=_MORNING[0],
            entry_window_end=_MORNING[1],
        ),
    ),
    Profile(
        "fixed quantity, small account",
        UserBrokerSpec(
            user_id="u",
            broker="angelone",
            available_capital=Decimal(150_000),
            sizing_mode=SizingMode.FIXED_QUANTITY,
            fixed_quantity=50,
            max_open_trades=3,
        ),
    ),
    Profile(
        "futures desk, large risk (freeze-quantity slicing)",
        UserBrokerSpec(
            user_id="u",
            broker="kotak",
            available_capital=Decimal(150_000_000),
            sizing_mode=SizingMode.RISK_PER_TRADE,
            risk_amount=Decimal(400_000),
            max_total_exposure=Decimal(120_000_000),
            reward_risk_ratio=Decimal("1.5"),
        ),
        symbols=FUTURES,
    ),
    Profile(
        "fixed capital, wide book, far targets",
        UserBrokerSpec(
            user_id="u",
            broker="dhan",
            available_capital=Decimal(2_500_000),
            sizing_mode=SizingMode.FIXED_CAPITAL,
            fixed_capital=Decimal(250_000),
            reward_risk_ratio=Decimal(5),
            max_open_trades=8,
            max_total_exposure=Decimal(1_500_000),
        ),
    ),
    Profile(
        "risk-based, tight limits",
        UserBrokerSpec(
            user_id="u",
            broker="fyers",
            available_capital=Decimal(300_000),
            sizing_mode=SizingMode.RISK_PER_TRADE,
            risk_amount=Decimal(1_500),
            max_open_trades=2,
            max_exposure_per_symbol=Decimal(120_000),
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class DemoAccount:
    user_broker_id: int
    label: str
    profile: str


def setup_reference(
    engine: Engine,
    clock: Clock,
    instruments: Sequence[SampleInstrument],
    users: int,
) -> list[DemoAccount]:
    """Instruments, ``users`` user-brokers (profiles in turn) and their subscriptions."""
    if users < 1:
        raise InvalidInputError("--users must be at least 1", field="users", value=users)
    admin = ReferenceAdmin(engine, clock)
    admin.add_instruments(
        [
            InstrumentSpec(
                symbol=item.symbol,
                exchange=item.exchange,
                segment=item.segment,
                tick_size=item.tick_size,
                lot_size=item.lot_size,
                freeze_quantity=item.freeze_quantity,
            )
            for item in instruments
        ]
    )
    accounts = []
    for n in range(users):
        profile = PROFILES[n % len(PROFILES)]
        user_id = f"trader{n + 1:02d}"
        spec = profile.spec.model_copy(update={"user_id": user_id})
        user_broker_id = admin.add_user_broker(spec)  # an upsert: a rerun resets its state
        if profile.symbols == ANY:
            admin.subscribe(user_broker_id)
        else:
            for item in instruments:
                if item.segment == profile.symbols:
                    admin.subscribe(user_broker_id, symbol=item.symbol)
        accounts.append(DemoAccount(user_broker_id, f"{user_id}@{spec.broker}", profile.name))
    return accounts
