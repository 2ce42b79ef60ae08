"""Factories for the EXIT tests: OPEN trades (with their reference rows) and row counts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from entry_support import AT, trade_chain
from signal_mgmt.exit.candidate import ExitCandidate
from signal_mgmt.models import (
    ExitEpisode,
    ExitIntent,
    ExitReason,
    ExitSignal,
    ExitTrailingMark,
    Order,
    OutboxRow,
)


@contextmanager
def rewinding_exit_intents(conn: Connection) -> Iterator[None]:
    """Lift the state-machine guard (migration 0007) inside ``conn``'s transaction, to stage
    a crash state such as PLACED put back to APPROVED; the guard is back at commit."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ALTER TABLE exit_intents DISABLE TRIGGER trg_exit_intent_moves")
        yield
        conn.exec_driver_sql("ALTER TABLE exit_intents ENABLE TRIGGER trg_exit_intent_moves")
        return
    ddl = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE name = 'trg_exit_intent_moves'"
    ).scalar_one()
    conn.exec_driver_sql("DROP TRIGGER trg_exit_intent_moves")
    yield
    conn.exec_driver_sql(ddl)


def open_trade(conn: Connection, **kwargs: Any) -> int:
    """An OPEN trade (by default) with every row it hangs on; see ``trade_chain``."""
    return trade_chain(conn, **kwargs).trade


def candidate(
    trade_id: int,
    reason: ExitReason = ExitReason.STOP_LOSS,
    price: str = "94.95",
    at: datetime = AT,
) -> ExitCandidate:
    return ExitCandidate(trade_id=trade_id, reason=reason, price=Decimal(price), detected_at=at)


EXIT_TABLES = (ExitEpisode, ExitSignal, ExitIntent, ExitTrailingMark, Order, OutboxRow)


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.__tablename__: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in EXIT_TABLES
        }


def rows(engine: Engine, entity: Any, *where: Any) -> list[Any]:
    with engine.connect() as conn:
        order = entity.__table__.primary_key.columns
        return list(conn.execute(select(entity.__table__).where(*where).order_by(*order)))


def event_types(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(OutboxRow.event_type).order_by(OutboxRow.id)).scalars())


def seed(engine: Engine, **kwargs: Any) -> int:
    with engine.begin() as conn:
        return open_trade(conn, **kwargs)
