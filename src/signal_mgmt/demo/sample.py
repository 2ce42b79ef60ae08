"""The demo's instrument sample (shipped as data: ``demo/data/instruments.json``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any

from signal_mgmt.errors import ConfigError


@dataclass(frozen=True, slots=True)
class SampleInstrument:
    """One instrument of the sample, with the price the day's random walk starts from."""

    symbol: str
    exchange: str
    segment: str
    tick_size: Decimal
    lot_size: int
    freeze_quantity: int
    reference_price: Decimal

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> SampleInstrument:
        return cls(
            symbol=str(data["symbol"]),
            exchange=str(data["exchange"]),
            segment=str(data["segment"]),
            tick_size=Decimal(data["tick_size"]),
            lot_size=int(data["lot_size"]),
            freeze_quantity=int(data["freeze_quantity"]),
            reference_price=Decimal(data["reference_price"]),
        )


def load_sample_instruments() -> list[SampleInstrument]:
    """All instruments of the shipped sample, in file order."""
    text = resources.files("signal_mgmt.demo").joinpath("data/instruments.json").read_text()
    try:
        return [SampleInstrument.from_mapping(item) for item in json.loads(text)["instruments"]]
    except (KeyError, ValueError, TypeError, ArithmeticError) as error:
        raise ConfigError(f"invalid demo instrument sample: {error!r}") from error
