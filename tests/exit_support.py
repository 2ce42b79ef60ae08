"""Factories for the EXIT tests: OPEN trades (with their reference rows) and row counts."""

from __future__ import annotations

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
