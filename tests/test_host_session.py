"""A host's own transaction (ORM Session or Core Connection): the host's row, the library's rows
and their outbox events commit together or roll back together, on both backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest
from sqlalchemy import Column, Connection, Engine, Integer, MetaData, String, Table, func, select
from sqlalchemy.orm import Session

from entry_world import World, make_world
from signal_mgmt.entry.qualification import EntryQualificationService
from signal_mgmt.market.calendar import nse_calendar
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import OutboxRow, Signal, SignalDelivery, TradeIntent

HOST = MetaData()
DESK_NOTES = Table(
    "desk_notes", HOST, Column("id", Integer, primary_key=True), Column("note", String(100))
)
Transaction = Callable[[Engine], AbstractContextManager[Session | Connection]]


@contextmanager
def orm_session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session, session.begin():
        yield session


def core_connection(engine: Engine) -> AbstractContextManager[Connection]:
    return engine.begin()


@pytest.fixture
def world(engine: Engine, clock: ManualClock) -> World:
    HOST.create_all(engine)
    return make_world(engine, clock, users=2, tcs_only=False)


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in (
                ("desk_notes", DESK_NOTES),
                ("signals", Signal),
                ("signal_deliveries", SignalDelivery),
                ("trade_intents", TradeIntent),
                ("outbox", OutboxRow),
            )
        }


def host_work(world: World, clock: ManualClock, executor: Session | Connection, note: str) -> None:
    """The host's row, then a signal, its deliveries and their intents, all in ``executor``."""
    executor.execute(DESK_NOTES.insert().values(note=note))
    published = world.signals.publish(world.candidate("INFY"), connection=executor)
    qualification = EntryQualificationService(world.engine, clock, nse_calendar())
    for delivery_id in published.delivery_ids:
        qualification.qualify(delivery_id, connection=executor)


@pytest.mark.parametrize("begin", [orm_session, core_connection])
def test_host_row_and_library_rows_commit_together(
    engine: Engine, world: World, clock: ManualClock, begin: Transaction
) -> None:
    before = counts(engine)
    with begin(engine) as executor:
        host_work(world, clock, executor, "desk 3 takes the breakout")
    after = counts(engine)
    grown = {name: after[name] - before[name] for name in after}
    assert grown["desk_notes"] == 1
    assert (grown["signals"], grown["signal_deliveries"], grown["trade_intents"]) == (1, 2, 2)
    assert grown["outbox"] >= 3  # the signal's and each intent's events, committed with them


@pytest.mark.parametrize("begin", [orm_session, core_connection])
def test_host_rollback_undoes_library_rows_and_events(
    engine: Engine, world: World, clock: ManualClock, begin: Transaction
) -> None:
    before = counts(engine)
    with pytest.raises(RuntimeError, match="changes its mind"), begin(engine) as executor:
        host_work(world, clock, executor, "never stored")
        raise RuntimeError("the desk changes its mind")
    assert counts(engine) == before  # no row and no event of the rolled-back work
