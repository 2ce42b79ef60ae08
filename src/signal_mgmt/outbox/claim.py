"""The relay's claim: which pending events one relay may publish now, and how it holds them.

Order needs two things. Writers: ``emit`` takes a key lock per partition key
(``outbox_lock_keys``, in its INSERT statement), so the ids of one key are in the
commit order of their writers and a committed row never has an uncommitted earlier row of its key.
Relays: a relay publishes a key's events as a prefix from the key's first open
row, in id order, and no two relays have events of one key in flight at once.

PostgreSQL: a claim is ONE statement and writes nothing to the rows. The keys
a relay has in flight are session-level advisory locks (``KEY_LOCK_SPACE``,
one per key hash) held by the claim's connection from the claim until the
batch is marked; the server drops them the moment that connection dies (a
relay killed with SIGKILL), and the next claim of any relay takes those keys
over. No lease column is updated per claim, so the only write per event is the
final mark.

SQLite (one process, one writer at a time): a claim leases its rows
(``claim_token`` plus ``available_at`` pushed to the end of the lease) in its
transaction; a relay that dies leaves its keys to the lease's end.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    and_,
    any_,
    bindparam,
    exists,
    func,
    or_,
    select,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Select, Update
from sqlalchemy.sql.elements import BindParameter

from signal_mgmt.errors import translate_db_errors
from signal_mgmt.market.clock import Clock
from signal_mgmt.models import OutboxStatus
from signal_mgmt.outbox.events import OutboxMessage
from signal_mgmt.outbox.table import among, outbox, server_clock_unless_manual, to_message
from signal_mgmt.storage.db import transaction

log = logging.getLogger(__name__)

PENDING = OutboxStatus.PENDING.value
DEAD = OutboxStatus.DEAD.value
PARKED = OutboxStatus.PARKED.value

KEY_LOCK_SPACE = 0x4F55544B
"""First int4 of the relays' in-flight key locks ("OUTK"); the second is ``hashtext(key)``.
The two-int4 advisory key space never meets the writers' int8 key locks (``emit``)."""

# Why each part:
# * held_back: the rows that hold their key back, DEAD or delayed (``available_at``
#   in the future: a delayed event, or a batch released after a failed publish);
#   two partial-index scans over a few rows, whatever the backlog. The check runs
#   BEFORE the LIMIT, so a blocked key's rows never fill a batch.
# * in_flight: the keys another relay has in flight right now (the lock manager,
#   not the table: no row is written to claim).
# * picked: pending rows in id order (a plain scan of ix_outbox_pending) of keys
#   neither held back nor in flight. Each key's rows are then a prefix from its
#   first open row: an earlier open row of the key is either picked too (lower
#   id) or holds the key back.
# * won: the keys we lock (try, never wait); a key another relay locked between
#   our read of pg_locks and now is dropped whole. Locking after the snapshot can
#   only cost a re-delivery: if another relay published and released the key in
#   between, our rows of it were read before its mark, and we publish them again
#   in the same order (first deliveries stay in id order).
# ``:now``: NULL for the server's clock (``server_clock_unless_manual``), else a manual one.
CLAIM = text(
    f"""
    WITH held_back AS MATERIALIZED (
        SELECT partition_key, id FROM outbox WHERE status = 'DEAD'
        UNION ALL
        SELECT partition_key, id FROM outbox
        WHERE status = 'PENDING' AND available_at > coalesce(:now, statement_timestamp())
    ),
    in_flight AS MATERIALIZED (
        SELECT objid FROM pg_locks
        WHERE locktype = 'advisory' AND classid = {KEY_LOCK_SPACE} AND objsubid = 2
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    ),
    picked AS MATERIALIZED (
        SELECT o.*, hashtext(o.partition_key) AS key_lock FROM outbox AS o
        WHERE o.status = 'PENDING' AND o.available_at <= coalesce(:now, statement_timestamp())
          AND NOT EXISTS (
              SELECT FROM held_back AS h WHERE h.partition_key = o.partition_key AND h.id < o.id
          )
          AND hashtext(o.partition_key)::oid NOT IN (SELECT objid FROM in_flight)
        ORDER BY o.id
        LIMIT :batch_size
    ),
    won AS MATERIALIZED (
        SELECT key_lock FROM (SELECT DISTINCT key_lock FROM picked) AS wanted
        WHERE pg_try_advisory_lock({KEY_LOCK_SPACE}, key_lock)
    )
    SELECT * FROM picked WHERE key_lock IN (SELECT key_lock FROM won) ORDER BY id
    """
)

UNLOCK = text(
    f"SELECT count(*) FILTER (WHERE pg_advisory_unlock({KEY_LOCK_SPACE}, key_lock))"
    " FROM unnest(CAST(:key_locks AS integer[])) AS key_lock"
)

SERVER_WATCH = {
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "10000",
}
"""Server-side settings of a claim's session (once per connection): the SERVER ends the
session of a relay host lost from the network (no FIN, no reset) within about 11 s,
and its key locks with it; the kernel's defaults would keep them for hours.
``client_connection_check_interval`` (PostgreSQL 14+) also stops a running statement
whose client is gone."""
_WATCHED = "signal_mgmt_server_watch"

IN_FLIGHT_KEYS = text(
    f"""
    SELECT objid FROM pg_locks
    WHERE locktype = 'advisory' AND classid = {KEY_LOCK_SPACE} AND objsubid = 2
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    """
)
"""PostgreSQL: the lock ids (``hashtext(partition_key)::oid``) of the keys relays have in flight."""


@dataclass
class Claim:
    """A claimed batch: ``messages`` in id order, held until the ``claimed`` block ends."""

    messages: list[OutboxMessage]
    token: uuid.UUID
    _session: Connection | None = field(default=None, repr=False)

    def release(self) -> None:
        """Let other relays take the batch's keys now, from any thread (e.g. ``stop()``
        while a publish hangs): the key locks' connection is dropped, the server
        releases them. The rows stay PENDING; whatever this relay still marks is
        guarded like any mark."""
        if self._session is not None and not self._session.invalidated:
            self._session.invalidate()


@contextmanager
def claimed(
    engine: Engine,
    *,
    clock: Clock,
    batch_size: int,
    lease: timedelta,
    token: uuid.UUID,
) -> Iterator[Claim]:
    """Claim a batch for ``token`` and hold it for the block (publish and mark inside).

    PostgreSQL: one statement in autocommit; the keys stay locked on this
    connection until the block ends. SQLite: a leased batch (``lease`` from the
    clock read AFTER the rows were picked), in its own short transaction.
    """
    if engine.dialect.name != "postgresql":
        yield _claim_with_lease(engine, clock, batch_size, lease, token)
        return
    with translate_db_errors():
        session = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    with session:
        try:
            with translate_db_errors():
                _watch_from_the_server(session)
                now = server_clock_unless_manual(clock)
                rows = _run_unprepared(session, {"now": now, "batch_size": batch_size})
        except BaseException:
            # Session locks outlive a failed statement: drop the session, and any key
            # it may have locked before failing, rather than pool it.
            session.invalidate()
            raise
        claim = Claim([to_message(row) for row in rows], token, session)
        try:
            yield claim
        finally:
            _unlock(claim, sorted({row.key_lock for row in rows}))


def _watch_from_the_server(session: Connection) -> None:
    """``SERVER_WATCH`` on this connection, the first time it claims."""
    if session.info.get(_WATCHED):
        return
    settings = dict(SERVER_WATCH)
    if (session.dialect.server_version_info or (0,)) >= (14,):
        settings["client_connection_check_interval"] = "2000"
    calls = ", ".join(f"set_config('{name}', '{value}', false)" for name, value in settings.items())
    session.execute(text(f"SELECT {calls}"))
    session.info[_WATCHED] = True


def _run_unprepared(session: Connection, params: dict[str, Any]) -> Sequence[Any]:
    """Run ``CLAIM`` without a server-side prepared plan: psycopg prepares a statement
    after a few runs, and a generic plan, made without ``:now`` and ``:batch_size``,
    may scan the whole table where a custom one reads a few index entries."""
    driver = session.connection.driver_connection
    threshold = getattr(driver, "prepare_threshold", None)
    driver.prepare_threshold = None  # type: ignore[union-attr]
    try:
        return session.execute(CLAIM, params).all()
    finally:
        driver.prepare_threshold = threshold  # type: ignore[union-attr]


def _unlock(claim: Claim, key_locks: list[int]) -> None:
    session = claim._session
    if not key_locks or session is None or session.invalidated:
        return  # an invalidated connection's locks died with its server session
    try:
        session.execute(UNLOCK, {"key_locks": key_locks})
    except DBAPIError:  # the same as StorageError here: nothing to translate for a caller
        # The connection is gone, and its locks with it; the batch's outcome is
        # already marked (or the exception in flight says why not).
        log.warning("outbox: key locks released with a lost connection", exc_info=True)
        session.invalidate()


def _claim_with_lease(
    engine: Engine, clock: Clock, batch_size: int, lease: timedelta, token: uuid.UUID
) -> Claim:
    with transaction(engine) as conn:
        params = {"now": clock.now(), "batch_size": batch_size}
        picked = [to_message(row) for row in conn.execute(leasable(), params)]
        if picked:
            conn.execute(
                update(outbox)
                .where(among(outbox.c.id, [row.id for row in picked], conn))
                .values(claim_token=token, available_at=clock.now() + lease)
            )
    return Claim(picked, token)


@functools.cache
def leasable() -> Select[Any]:
    """SQLite's claim query: pending rows whose key nothing earlier holds back.

    Held back: DEAD, leased (in flight) or delayed rows, and a row parked while
    in flight (its lease still runs: the later events of its key wait for it).
    """
    now: BindParameter[Any] = bindparam("now")
    held_back = union_all(
        select(outbox.c.partition_key, outbox.c.id).where(outbox.c.status == DEAD),
        select(outbox.c.partition_key, outbox.c.id).where(
            or_(
                outbox.c.status == PENDING,
                and_(outbox.c.status == PARKED, outbox.c.claim_token.is_not(None)),
            ),
            outbox.c.available_at > now,
        ),
    ).cte("held_back")
    earlier_held_back = exists().where(
        held_back.c.partition_key == outbox.c.partition_key, held_back.c.id < outbox.c.id
    )
    return (
        select(outbox)
        .where(outbox.c.status == PENDING, outbox.c.available_at <= now, ~earlier_held_back)
        .order_by(outbox.c.id)
        .limit(bindparam("batch_size"))
    )


def mark_published(
    engine: Engine,
    claim: Claim | None,
    token: uuid.UUID,
    ids: Sequence[int],
    *,
    published_at: datetime,
    tries: int,
) -> int:
    """Mark ``ids`` of ``token``'s batch PUBLISHED; returns how many rows it changed.

    PostgreSQL: on the claim's own connection, one statement that commits
    without waiting for the WAL flush (``_mark_on_session``): the next claim
    waits for this mark, so it is on the commit->publish path of whatever
    arrives meanwhile. A lost mark costs only a re-delivery (commits are lost as
    a suffix, in order). Else (SQLite, or a batch handed back) a transaction.
    """
    params = {"token": token, "ids": list(ids), "published_at": published_at, "tries": tries}
    with translate_db_errors():
        session = claim._session if claim is not None else None
        if session is not None and not session.invalidated:
            return int(session.execute(_mark_on_session(), params).scalar_one())
        with transaction(engine) as conn:
            return int(conn.execute(_mark_statement(conn.dialect.name), params).rowcount)


@functools.cache
def _mark_on_session() -> Select[Any]:
    marked = _mark_statement("postgresql").returning(outbox.c.id).cte("marked")
    no_flush_wait = func.set_config("synchronous_commit", "off", true())
    return select(select(func.count()).select_from(marked).scalar_subquery(), no_flush_wait)


@functools.cache
def _mark_statement(dialect_name: str) -> Update:
    """The hot-path mark, built once: the batch's rows become PUBLISHED.

    Parameters: ``token``, ``ids``, ``published_at``, ``tries``. A row parked
    while in flight was delivered all the same: it is marked too.
    """
    ids: ColumnElement[bool]
    still_ours: ColumnElement[bool]
    if dialect_name == "postgresql":
        ids = outbox.c.id == any_(bindparam("ids", type_=postgresql.ARRAY(BigInteger())))
        still_ours = outbox.c.status.in_([PENDING, PARKED])  # held by our key locks
    else:
        ids = outbox.c.id.in_(bindparam("ids", expanding=True))
        still_ours = outbox.c.claim_token == bindparam("token")
    return (
        update(outbox)
        .where(still_ours, ids)
        .values(
            status=OutboxStatus.PUBLISHED.value,
            published_at=bindparam("published_at"),
            attempts=outbox.c.attempts + bindparam("tries"),
            claim_token=None,
            last_error=None,
        )
    )


def owned(token: uuid.UUID, ids: Sequence[int], bind: Connection | Engine) -> ColumnElement[bool]:
    """The batch's rows this relay may still mark DEAD or release.

    PostgreSQL: the pending ones (our key locks keep other relays off them).
    SQLite: those still leased to ``token`` (a relay whose lease ran out marks nothing).
    """
    if bind.dialect.name == "postgresql":
        return and_(outbox.c.status == PENDING, among(outbox.c.id, ids, bind))
    return and_(outbox.c.claim_token == token, among(outbox.c.id, ids, bind))


def extend_lease(conn: Connection, token: uuid.UUID, ids: Sequence[int], until: Any) -> None:
    """Keep a batch through a retry pause: SQLite pushes its lease; on PostgreSQL the
    key locks already hold it for as long as the relay lives, and a pushed
    ``available_at`` would hold the keys back after a crash."""
    if conn.dialect.name != "postgresql":
        conn.execute(update(outbox).where(owned(token, ids, conn)).values(available_at=until))
