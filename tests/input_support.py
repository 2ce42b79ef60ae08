"""Shared by the bad-input tests: row counts of every table, and a small world with a trade."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from entry_world import World, make_world
from exit_support import open_trade
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import Base


def table_counts(engine: Engine) -> dict[str, int]:
    """Rows in every table of the library: "nothing written" compares two of these."""
    with engine.connect() as conn:
        return {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in Base.metadata.sorted_tables
        }


@dataclass
class Desk:
    """Reference rows, subscribed user-brokers, one undelivered signal and one OPEN trade."""

    world: World
    trade_id: int


def make_desk(engine: Engine, clock: ManualClock) -> Desk:
    world = make_world(engine, clock, users=1, tcs_only=False)
    world.signals.publish(world.candidate())
    with engine.begin() as conn:
        trade_id = open_trade(conn, symbol="TCS", tick="0.10")
    return Desk(world, trade_id)
