"""Operating the outbox: status, dead letters, parking, replay, retention.

Every write here is a guarded ``UPDATE ... WHERE status = <expected>`` or a
bounded ``DELETE``. ``park`` refuses an event a relay has in flight (PostgreSQL:
its key locked by a claim; SQLite: the row leased): its publish may still land,
and nothing would then keep the later events of its key behind it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, cast, delete, func, select, update
from sqlalchemy.dialects.postgresql import OID

from signal_mgmt.errors import IllegalTransitionError, InvalidInputError, NotFoundError
from signal_mgmt.market.clock import Clock
from signal_mgmt.models import OutboxStatus
from signal_mgmt.outbox.claim import IN_FLIGHT_KEYS
from signal_mgmt.outbox.table import due_now, outbox
from signal_mgmt.storage.db import Executor, transaction

PENDING, PUBLISHED, DEAD, PARKED = (s.value for s in OutboxStatus)


@dataclass(frozen=True)
class OutboxCounts:
    """``pending`` excludes ``in_flight`` (leased to a relay right now)."""

    pending: int
    in_flight: int
    published: int
    dead: int
    parked: int
    oldest_pending_age: float | None
    """Seconds since the oldest unpublished PENDING event was emitted."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "pending": self.pending,
            "in_flight": self.in_flight,
            "published": self.published,
            "dead": self.dead,
            "parked": self.parked,
            "oldest_pending_age_seconds": self.oldest_pending_age,
        }


def outbox_counts(engine: Engine, clock: Clock, connection: Executor | None = None) -> OutboxCounts:
    now = clock.now()
    with transaction(engine, connection) as conn:
        leased = held_by_a_relay(conn, clock)
        rows = conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status))
        by_status: dict[str, int] = {row[0]: row[1] for row in rows}
        in_flight = conn.execute(
            select(func.count()).where(outbox.c.status == PENDING, leased)
        ).scalar_one()
        oldest = conn.execute(
            select(func.min(outbox.c.created_at)).where(outbox.c.status == PENDING)
        ).scalar_one()
    age = None if oldest is None else max(0.0, (now - oldest).total_seconds())
    return OutboxCounts(
        pending=by_status.get(PENDING, 0) - in_flight,
        in_flight=in_flight,
        published=by_status.get(PUBLISHED, 0),
        dead=by_status.get(DEAD, 0),
        parked=by_status.get(PARKED, 0),
        oldest_pending_age=age,
    )


@dataclass(frozen=True)
class OutboxEntry:
    """One row as ``outbox inspect`` shows it."""

    id: int
    event_id: uuid.UUID
    event_type: str
    partition_key: str
    status: str
    attempts: int
    created_at: datetime
    last_error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_id": str(self.event_id),
            "event_type": self.event_type,
            "partition_key": self.partition_key,
            "status": self.status,
            "attempts": self.attempts,
            "created_at": self.created_at.isoformat(),
            "last_error": self.last_error,
        }


def list_events(
    engine: Engine,
    clock: Clock,
    *,
    statuses: Sequence[str] = (PENDING, DEAD),
    partition_key: str | None = None,
    event_type: str | None = None,
    older_than: timedelta | None = None,
    limit: int = 100,
) -> list[OutboxEntry]:
    """Events in ``statuses`` (default: pending and dead), oldest first, filtered."""
    unknown = set(statuses) - {s.value for s in OutboxStatus}
    if unknown or not statuses:
        raise InvalidInputError(f"unknown status {sorted(unknown)}", field="statuses")
    if limit < 1:
        raise InvalidInputError("limit must be >= 1", field="limit", value=limit)
    query = select(
        outbox.c.id,
        outbox.c.event_id,
        outbox.c.event_type,
        outbox.c.partition_key,
        outbox.c.status,
        outbox.c.attempts,
        outbox.c.created_at,
        outbox.c.last_error,
    ).where(outbox.c.status.in_(list(statuses)))
    if partition_key is not None:
        query = query.where(outbox.c.partition_key == partition_key)
    if event_type is not None:
        query = query.where(outbox.c.event_type == event_type)
    if older_than is not None:
        query = query.where(outbox.c.created_at <= clock.now() - older_than)
    with transaction(engine) as conn:
        rows = conn.execute(query.order_by(outbox.c.id).limit(limit)).all()
    return [OutboxEntry(*row) for row in rows]


def retry_dead(
    engine: Engine,
    clock: Clock,
    event_id: uuid.UUID | None = None,
    connection: Executor | None = None,
) -> int:
    """DEAD -> PENDING with a fresh attempt budget (one event, or all); returns how many."""
    values = {
        "status": PENDING,
        "attempts": 0,
        "available_at": due_now(clock, engine),
        "claim_token": None,
    }
    return _move(
        engine,
        connection=connection,
        event_id=event_id,
        expected={DEAD},
        target=PENDING,
        values=values,
    )


def park(
    engine: Engine, clock: Clock, event_id: uuid.UUID, connection: Executor | None = None
) -> None:
    """Set a poison event aside (PENDING or DEAD -> PARKED): its key's later events flow on.

    Refused (``IllegalTransitionError``) while a relay has the event in flight: that
    publish may still land, late, and once parked nothing would keep the later
    events of its key behind it. Park it once the relay has marked it (a hung
    relay's ``stop()`` hands its batch back); it is then published or still pending.
    """
    values = {"status": PARKED}
    _move(
        engine,
        connection=connection,
        event_id=event_id,
        expected={PENDING, DEAD},
        target=PARKED,
        values=values,
        unless=(held_by_a_relay(engine, clock), "in flight"),
    )


def held_by_a_relay(bind: Connection | Engine, clock: Clock) -> ColumnElement[bool]:
    """Rows a relay holds right now: PostgreSQL, its key is locked by a claim's session;
    SQLite, the row is leased."""
    if bind.dialect.name == "postgresql":  # the keys relays hold locked (claim.py)
        key_lock = cast(func.hashtext(outbox.c.partition_key), OID)
        return key_lock.in_(IN_FLIGHT_KEYS.columns(objid=OID).scalar_subquery())
    return and_(outbox.c.claim_token.is_not(None), outbox.c.available_at > clock.now())


def unpark(
    engine: Engine, clock: Clock, event_id: uuid.UUID, connection: Executor | None = None
) -> None:
    """PARKED -> PENDING: published next, before the later events of its key still pending."""
    values = {"status": PENDING, "attempts": 0, "available_at": due_now(clock, engine)}
    _move(
        engine,
        connection=connection,
        event_id=event_id,
        expected={PARKED},
        target=PENDING,
        values=values,
    )


def replay(
    engine: Engine,
    clock: Clock,
    event_ids: Sequence[uuid.UUID],
    connection: Executor | None = None,
) -> int:
    """Publish chosen PUBLISHED events again (same event_id); returns how many.

    They go back to PENDING, so the relays deliver them with the ordering rules
    of any pending event (each one holds back the later pending events of its key).
    """
    if not event_ids:
        raise InvalidInputError("replay needs at least one event id", field="event_ids")
    values = {
        "status": PENDING,
        "attempts": 0,
        "available_at": due_now(clock, engine),
        "published_at": None,
    }
    with transaction(engine, connection) as conn:
        _require_all_exist(conn, event_ids)
        return int(
            conn.execute(
                update(outbox)
                .where(outbox.c.event_id.in_(list(event_ids)), outbox.c.status == PUBLISHED)
                .values(**values)
            ).rowcount
        )


def purge_published(
    engine: Engine, clock: Clock, older_than: timedelta, *, batch_size: int = 1000
) -> int:
    """Delete PUBLISHED rows published more than ``older_than`` ago, ``batch_size`` per
    transaction (short locks, no giant transaction); returns how many were deleted.

    Safe with relays running: they only ever touch PENDING rows.
    """
    if older_than <= timedelta(0):
        raise InvalidInputError("older_than must be positive", field="older_than", value=older_than)
    if batch_size < 1:
        raise InvalidInputError("batch_size must be >= 1", field="batch_size", value=batch_size)
    cutoff = clock.now() - older_than
    oldest_first = (
        select(outbox.c.id)
        .where(outbox.c.status == PUBLISHED, outbox.c.published_at < cutoff)
        .order_by(outbox.c.id)
        .limit(batch_size)
    )
    deleted = 0
    while True:
        with transaction(engine) as conn:
            ids = list(conn.execute(oldest_first).scalars())
            if ids:
                conn.execute(delete(outbox).where(outbox.c.id.in_(ids)))
        deleted += len(ids)
        if len(ids) < batch_size:
            return deleted


def _move(
    engine: Engine,
    *,
    connection: Executor | None,
    event_id: uuid.UUID | None,
    expected: set[str],
    target: str,
    values: dict[str, Any],
    unless: tuple[ColumnElement[bool], str] | None = None,
) -> int:
    """Guarded ``expected -> target``; ``unless``: a condition that also refuses the move,
    and how the refusal names it."""
    guard: ColumnElement[bool] = outbox.c.status.in_(sorted(expected))
    if unless is not None:
        guard = and_(guard, ~unless[0])
    with transaction(engine, connection) as conn:
        if event_id is None:
            return int(conn.execute(update(outbox).where(guard).values(**values)).rowcount)
        moved = conn.execute(
            update(outbox).where(outbox.c.event_id == event_id, guard).values(**values)
        ).rowcount
        if moved == 0:
            actual = conn.execute(
                select(outbox.c.status).where(outbox.c.event_id == event_id)
            ).scalar_one_or_none()
            if actual is None:
                raise NotFoundError("outbox event", str(event_id))
            if unless is not None and actual in expected:
                actual = f"{actual}, {unless[1]}"
            raise IllegalTransitionError(
                "outbox event",
                str(event_id),
                expected="|".join(sorted(expected)),
                target=target,
                actual=actual,
            )
        return int(moved)


def _require_all_exist(conn: Connection, event_ids: Sequence[uuid.UUID]) -> None:
    found = set(
        conn.execute(
            select(outbox.c.event_id).where(outbox.c.event_id.in_(list(event_ids)))
        ).scalars()
    )
    missing = [str(event_id) for event_id in event_ids if event_id not in found]
    if missing:
        raise NotFoundError("outbox event", ", ".join(missing))
