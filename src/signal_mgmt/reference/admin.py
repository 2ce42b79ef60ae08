"""A small Python API for hosts (and the demo) to fill the reference tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import time
from decimal import Decimal
from typing import Any

from pydantic import Field, model_validator
from sqlalchemy import Connection, Engine, select, update

from signal_mgmt.errors import InvalidInputError, NotFoundError
from signal_mgmt.market.clock import Clock
from signal_mgmt.models import ANY, Instrument, SizingMode, Subscription, UserBroker
from signal_mgmt.storage.db import Executor, transaction
from signal_mgmt.storage.idempotent import insert_ignore, upsert
from signal_mgmt.validation import (
    ExactMoney,
    ExactPrice,
    InputModel,
    require_id,
    require_money,
    require_text,
)

_NAME = r"^\S+$"


class InstrumentSpec(InputModel):
    symbol: str = Field(min_length=1, max_length=64, pattern=_NAME)
    tick_size: ExactPrice = Decimal("0.05")
    lot_size: int = Field(ge=1, default=1)
    freeze_quantity: int | None = Field(default=None, ge=1)
    exchange: str = Field(default="NSE", min_length=1, max_length=16)
    segment: str = Field(default="EQ", min_length=1, max_length=16)
    active: bool = True


class UserBrokerSpec(InputModel):
    """A user's account at a broker; the sizing mode decides which parameter is required."""

    user_id: str = Field(min_length=1, max_length=64)
    broker: str = Field(min_length=1, max_length=32)
    available_capital: ExactMoney
    sizing_mode: SizingMode
    fixed_quantity: int | None = Field(default=None, ge=1)
    fixed_capital: ExactPrice | None = None
    risk_amount: ExactPrice | None = None
    reward_risk_ratio: ExactPrice = Decimal(2)
    max_open_trades: int | None = Field(default=None, ge=0)
    max_exposure_per_symbol: ExactMoney | None = None
    max_total_exposure: ExactMoney | None = None
    entry_window_start: time | None = None
    entry_window_end: time | None = None
    enabled: bool = True
    connected: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> UserBrokerSpec:
        needed = {
            SizingMode.FIXED_QUANTITY: ("fixed_quantity", self.fixed_quantity),
            SizingMode.FIXED_CAPITAL: ("fixed_capital", self.fixed_capital),
            SizingMode.RISK_PER_TRADE: ("risk_amount", self.risk_amount),
        }[self.sizing_mode]
        if needed[1] is None:
            raise ValueError(f"sizing mode {self.sizing_mode} needs {needed[0]}")
        start, end = self.entry_window_start, self.entry_window_end
        if (start is None) != (end is None) or (start and end and start >= end):
            raise ValueError("entry window needs both a start and a later end")
        for bound in (start, end):
            if bound is not None and bound.tzinfo is not None:
                raise ValueError("entry window times are exchange-local wall times, without tz")
        return self


def _updatable(row: dict[str, Any]) -> list[str]:
    return [name for name in row if name != "created_at"]


class ReferenceAdmin:
    """Add or update instruments and user-brokers, subscribe them, flip broker state."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def add_instruments(
        self, specs: Sequence[InstrumentSpec], connection: Executor | None = None
    ) -> None:
        """Insert, or update by symbol, in one statement."""
        if not isinstance(specs, list | tuple) or not all(
            isinstance(spec, InstrumentSpec) for spec in specs
        ):
            raise InvalidInputError("add_instruments takes a list of InstrumentSpec", field="specs")
        if not specs:
            return
        now = self._clock.now()
        rows = [{**spec.model_dump(), "created_at": now} for spec in specs]
        with transaction(self._engine, connection) as conn:
            conn.execute(upsert(conn, Instrument, ["symbol"], _updatable(rows[0])), rows)

    def add_user_broker(self, spec: UserBrokerSpec, connection: Executor | None = None) -> int:
        """Insert, or update by (user_id, broker); returns the user-broker id."""
        if not isinstance(spec, UserBrokerSpec):
            raise InvalidInputError("add_user_broker takes a UserBrokerSpec", field="spec")
        row = {**spec.model_dump(), "created_at": self._clock.now()}
        with transaction(self._engine, connection) as conn:
            key = ["user_id", "broker"]
            conn.execute(upsert(conn, UserBroker, key, _updatable(row)), [row])
            return int(
                conn.execute(
                    select(UserBroker.id).where(
                        UserBroker.user_id == spec.user_id, UserBroker.broker == spec.broker
                    )
                ).scalar_one()
            )

    def subscribe(
        self,
        user_broker_id: int,
        *,
        symbol: str = ANY,
        confluence_type: str = ANY,
        connection: Executor | None = None,
    ) -> None:
        """Deliver signals of ``symbol`` and ``confluence_type`` (``*``: any) to the user-broker."""
        require_id(user_broker_id, "user_broker_id")
        require_text(symbol, "symbol", 64)
        require_text(confluence_type, "confluence_type", 64)
        row = {
            "user_broker_id": user_broker_id,
            "symbol": symbol,
            "confluence_type": confluence_type,
            "created_at": self._clock.now(),
        }
        with transaction(self._engine, connection) as conn:
            self._require_user_broker(conn, user_broker_id)
            key = ["user_broker_id", "symbol", "confluence_type"]
            conn.execute(insert_ignore(conn, Subscription, key), [row])

    def set_broker_state(
        self,
        user_broker_id: int,
        *,
        enabled: bool | None = None,
        connected: bool | None = None,
        available_capital: Decimal | None = None,
        connection: Executor | None = None,
    ) -> None:
        require_id(user_broker_id, "user_broker_id")
        for name, flag in (("enabled", enabled), ("connected", connected)):
            if flag is not None and not isinstance(flag, bool):
                raise InvalidInputError(f"{name} must be True or False", field=name, value=flag)
        changes: dict[str, Any] = {
            name: value
            for name, value in (
                ("enabled", enabled),
                ("connected", connected),
                (
                    "available_capital",
                    None
                    if available_capital is None
                    else require_money(available_capital, "available_capital"),
                ),
            )
            if value is not None
        }
        with transaction(self._engine, connection) as conn:
            self._require_user_broker(conn, user_broker_id)
            if changes:
                conn.execute(
                    update(UserBroker).where(UserBroker.id == user_broker_id).values(**changes)
                )

    @staticmethod
    def _require_user_broker(conn: Connection, user_broker_id: int) -> None:
        found = conn.execute(select(UserBroker.id).where(UserBroker.id == user_broker_id)).first()
        if found is None:
            raise NotFoundError("user_broker", user_broker_id)
