"""The detector's database side: rebuild it on restart, persist trailing-stop water marks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from sqlalchemy import Engine, bindparam, select, update

from signal_mgmt.errors import InvalidInputError
from signal_mgmt.exit.conditions import OpenTrade, advance_water_mark
from signal_mgmt.exit.detector import ExitDetector
from signal_mgmt.market.clock import Clock
from signal_mgmt.models import Direction, ExitTrailingMark, Instrument, Trade, TradeStatus
from signal_mgmt.storage.db import Executor, transaction
from signal_mgmt.storage.idempotent import insert_ignore
from signal_mgmt.validation import require_id


def load_open_trades(
    engine: Engine,
    connection: Executor | None = None,
    *,
    trade_ids: Sequence[int] | None = None,
) -> list[tuple[OpenTrade, Decimal | None]]:
    """OPEN trades (all, or those of ``trade_ids``) with their persisted water marks
    (None for a mark that never moved)."""
    query = (
        select(Trade.__table__, ExitTrailingMark.water_mark, Instrument.tick_size)
        .join(Instrument, Instrument.symbol == Trade.symbol)
        .outerjoin(ExitTrailingMark, ExitTrailingMark.trade_id == Trade.id)
        .where(Trade.status == TradeStatus.OPEN)
        .order_by(Trade.id)
    )
    if trade_ids is not None:
        query = query.where(Trade.id.in_([require_id(t, "trade_id") for t in trade_ids]))
    with transaction(engine, connection) as conn:
        rows = conn.execute(query).all()
    return [
        (
            OpenTrade(
                trade_id=row.id,
                symbol=row.symbol,
                direction=Direction(row.direction),
                entry_price=row.entry_price,
                target_price=row.target_price,
                stop_price=row.stop_price,
                opened_at=row.opened_at,
                tick_size=row.tick_size,
            ),
            row.water_mark,
        )
        for row in rows
    ]


def open_trade_ids(engine: Engine, connection: Executor | None = None) -> list[int]:
    """Ids of the OPEN trades, oldest first."""
    query = select(Trade.id).where(Trade.status == TradeStatus.OPEN).order_by(Trade.id)
    with transaction(engine, connection) as conn:
        return list(conn.execute(query).scalars())


def rebuild_detector(
    detector: ExitDetector, engine: Engine, connection: Executor | None = None
) -> int:
    """Fill a fresh detector with the open trades and their marks; returns how many."""
    trades = load_open_trades(engine, connection)
    for trade, mark in trades:
        detector.add_trade(trade, water_mark=mark)
    return len(trades)


def save_water_marks(
    engine: Engine,
    marks: Mapping[int, Decimal],
    clock: Clock,
    connection: Executor | None = None,
) -> None:
    """Persist improved marks (``TickOutcome.water_marks``); a mark never moves backwards.

    The stored mark is replaced only by a better one for the trade's direction, so
    two detectors (or a replayed tick) cannot lower it. The comparison is made in
    Python on rows read FOR UPDATE: Money is text on SQLite, where SQL would compare
    strings.
    """
    for trade_id, mark in marks.items():
        if not isinstance(mark, Decimal) or not mark.is_finite() or mark <= 0:
            raise InvalidInputError("a water mark is a positive Decimal", field="marks", value=mark)
        if isinstance(trade_id, bool) or not isinstance(trade_id, int) or trade_id <= 0:
            raise InvalidInputError("trade ids are positive ints", field="marks", value=trade_id)
    if not marks:
        return
    now = clock.now()
    with transaction(engine, connection) as conn:
        rows = [
            {"trade_id": trade_id, "water_mark": mark, "updated_at": now}
            for trade_id, mark in sorted(marks.items())
        ]
        conn.execute(insert_ignore(conn, ExitTrailingMark, ["trade_id"]), rows)
        stored = conn.execute(
            select(ExitTrailingMark.trade_id, ExitTrailingMark.water_mark, Trade.direction)
            .join(Trade, Trade.id == ExitTrailingMark.trade_id)
            .where(ExitTrailingMark.trade_id.in_(list(marks)))
            .order_by(ExitTrailingMark.trade_id)
            .with_for_update(of=ExitTrailingMark)
        ).all()
        better = [
            {"key": trade_id, "new_mark": marks[trade_id], "at": now}
            for trade_id, current, direction in stored
            if advance_water_mark(Direction(direction), current, marks[trade_id]) != current
        ]
        if better:
            conn.execute(
                update(ExitTrailingMark)
                .where(ExitTrailingMark.trade_id == bindparam("key"))
                .values(water_mark=bindparam("new_mark"), updated_at=bindparam("at")),
                better,
            )
