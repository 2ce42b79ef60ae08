"""The relay's claim: which pending events one relay may publish now, and the lease it takes.

A claim is one short transaction: pick a batch, take a lease on it (a token
plus ``available_at`` pushed to the end of the lease), commit. The relay then
publishes OUTSIDE any transaction and marks the rows by token. Nothing is held
open while a broker is slow, and a relay that dies or hangs only delays its
batch until the lease runs out; then any relay claims it again.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    FromClause,
    and_,
    any_,
    bindparam,
    exists,
    func,
    select,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import Select, Update
from sqlalchemy.sql.elements import BindParameter

from signal_mgmt.models import OutboxStatus
from signal_mgmt.outbox.events import OutboxMessage
from signal_mgmt.outbox.table import among, outbox, to_message

_earlier = outbox.alias("earlier")

PENDING = OutboxStatus.PENDING.value
DEAD = OutboxStatus.DEAD.value
BLOCKING = (PENDING, DEAD)
"""Statuses that hold back the later events of their key (PARKED does not)."""

# The watermark: the oldest transaction of THIS database still running (or
# prepared), as a 64-bit xact id, or the next xact id if none runs. The claim
# transaction reads it before the statement that reads the rows takes its
# snapshot, so every transaction below the watermark had finished before the
# rows were read (and, read once per transaction, the activity view is fresh).
# pg_stat_activity shows only 32-bit xids: each is widened against the next
# 64-bit xid (running xids are always within 2^31 of it); an xid assigned
# after that instant (its distance comes out "negative") is skipped, as it is
# above the watermark anyway.
# Why not pg_snapshot_xmin(pg_current_snapshot())? It is the same bound, but
# cluster-wide: a write transaction in ANOTHER database of the server would
# hold our relay back too.
# The same statement pins this transaction to custom plans: psycopg prepares the
# claim after a few runs, and a generic plan of it (planned without knowing
# ``now`` or the watermark) drained ~25x slower when forced. set_config(...,
# true) is transaction-local and costs no extra round trip.
WATERMARK = text(
    """
    WITH next AS (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xid),
    running AS (
        SELECT backend_xid::text::bigint AS xid32 FROM pg_stat_activity
        WHERE datname = current_database() AND backend_xid IS NOT NULL
        UNION ALL
        SELECT transaction::text::bigint FROM pg_prepared_xacts
        WHERE database = current_database()
    ),
    widened AS (
        SELECT next.xid - ((next.xid % 4294967296) - running.xid32 + 4294967296) % 4294967296
               AS xid, next.xid AS next_xid
        FROM next, running
    )
    SELECT least(
        (SELECT xid FROM next),
        (SELECT min(xid) FROM widened WHERE next_xid - xid <= 2147483648)
    ), set_config('plan_cache_mode', 'force_custom_plan', true)
    """
)


def watermark(connection: Connection) -> int | None:
    """PostgreSQL: rows with a lower ``xact_id`` are settled (see ``candidates``)."""
    if connection.dialect.name != "postgresql":
        return None
    return int(connection.execute(WATERMARK).scalar_one())


# The statements are built once, with these parameters, and reused: building and
# hashing them per claim cost more than running them.
NOW: BindParameter[Any] = bindparam("now")
BATCH_SIZE: BindParameter[Any] = bindparam("batch_size")
SETTLED_BELOW: BindParameter[Any] = bindparam("watermark")
TOKEN: BindParameter[Any] = bindparam("token")
LEASED_UNTIL: BindParameter[Any] = bindparam("until")


def _settled(table: FromClause, watermarked: bool) -> ColumnElement[bool]:
    if not watermarked:  # SQLite: one writer at a time, ids commit in order
        return true()
    return table.c.xact_id < SETTLED_BELOW


@functools.cache
def candidates(watermarked: bool) -> Select[Any]:
    """The claim query. Why it is correct:

    * Order: events are delivered per ``partition_key`` in ``id`` order. A row
      is a candidate only if no EARLIER row of its key is held back, that is
      DEAD, leased by a relay (``available_at`` in the future), waiting for a
      retry, or not yet settled (below). So a key whose head is in flight on
      another relay, dead or delayed is skipped whole, and ``ORDER BY id``
      makes the batch hold each key's events as a prefix, oldest first.
    * Several relays (PostgreSQL): ``FOR UPDATE SKIP LOCKED`` lets two claims
      run at once without waiting on each other; each locks the rows it
      picked. SKIP LOCKED can however hand relay B a key's row 5 while relay
      A's concurrent claim holds row 3 (or row 3 and 5 to B, 4 to A):
      :func:`leased_batch` keeps a picked row only if the key's open rows up
      to it are all ours (a count against the row's rank among our rows of
      the key). A's row 3 is PENDING to B's eyes (leased or not yet), so B
      lets key K go this time. At most one relay ever has a key in flight.
    * Commit-order gaps: ids come from a sequence at INSERT time, so row 3 may
      commit after row 5. Row 3 is then invisible to us and cannot block row
      5 by the rule above. The snapshot watermark closes that hole: a row is
      claimable only once ``xact_id`` (its writer, ``pg_current_xact_id()``
      at emit) is below :data:`WATERMARK`, the oldest transaction of this
      database still running when the claim began; every transaction with a
      lower xact id has then committed or rolled back, and our snapshot,
      taken after, sees all its rows. While row 3's writer is open, row 5 of
      a later writer waits, and so does the rest of its key (an unsettled
      earlier row holds its key back too). A lower id committed late is thus
      never overtaken, and never lost, as the relay scans by status, not with
      a moving id cursor.
      Cost: one long-running write transaction in this database (any table)
      holds back every event written after it began, until it ends; set
      ``idle_in_transaction_session_timeout`` / statement timeouts in
      production. Limit: if two transactions write the SAME key at once and
      the later id's writer took its xact id first (it wrote something else
      earlier), the watermark does not hold it back; services serialise work
      per key (row or advisory locks), so this does not happen in the library.
    * SQLite has a single writer (``BEGIN IMMEDIATE``): ids commit in id order
      and claims never overlap, so neither the watermark nor locks are needed.
    """
    held_back = _held_back(watermarked)
    earlier_held_back = exists().where(
        held_back.c.partition_key == outbox.c.partition_key, held_back.c.id < outbox.c.id
    )
    query = (
        select(outbox)
        .where(
            outbox.c.status == PENDING,
            outbox.c.available_at <= NOW,
            _settled(outbox, watermarked),
            ~earlier_held_back,
        )
        .order_by(outbox.c.id)
        .limit(BATCH_SIZE)
    )
    return query.with_for_update(skip_locked=True, of=outbox)


def _held_back(watermarked: bool) -> CTE:
    """The open rows that hold their key back: DEAD, leased or delayed, not yet settled.

    Three index scans (``ix_outbox_dead``, ``ix_outbox_pending_available``,
    ``ix_outbox_pending_xact``), each over a few rows whatever the backlog:
    finding them among all open rows would make every claim cost O(backlog).
    """
    arms = [
        select(outbox.c.partition_key, outbox.c.id).where(outbox.c.status == DEAD),
        select(outbox.c.partition_key, outbox.c.id).where(
            outbox.c.status == PENDING, outbox.c.available_at > NOW
        ),
    ]
    if watermarked:
        arms.append(
            select(outbox.c.partition_key, outbox.c.id).where(
                outbox.c.status == PENDING, outbox.c.xact_id >= SETTLED_BELOW
            )
        )
    return union_all(*arms).cte("held_back")


@functools.cache
def leased_batch() -> Select[Any]:
    """PostgreSQL: pick, check and lease in ONE statement (one round trip, one snapshot).

    ``picked`` locks the candidates; ``checked`` keeps a picked row only if the
    open (PENDING/DEAD) rows of its key up to it are all ours: none before our
    first row of the key, and from there to the row as many as its rank among
    our rows of that key. Anything else means another relay's concurrent claim
    holds one of them (SKIP LOCKED passed it over), so the key is left to it
    from that row on. The probes read the statement's snapshot, in which the
    other relay's rows are still PENDING (leased or not yet), so they see them.
    ``leased`` takes the lease and returns the rows.
    """
    picked = candidates(watermarked=True).cte("picked")
    key = picked.c.partition_key
    ranked = select(
        picked.c.id,
        picked.c.partition_key,
        func.row_number().over(partition_by=key, order_by=picked.c.id).label("rank"),
        func.min(picked.c.id).over(partition_by=key).label("first_mine"),
    ).cte("ranked")
    same_key_open = and_(
        _earlier.c.partition_key == ranked.c.partition_key, _earlier.c.status.in_(BLOCKING)
    )
    # Both probes walk the (partition_key, id) index over a few entries: the
    # first stops at the key's first open row, the second spans our own rows.
    nobody_before_us = ~exists().where(same_key_open, _earlier.c.id < ranked.c.first_mine)
    open_from_ours_to_here = (
        select(func.count())
        .where(same_key_open, _earlier.c.id.between(ranked.c.first_mine, ranked.c.id))
        .scalar_subquery()
    )
    checked = select(
        ranked.c.id, and_(nobody_before_us, open_from_ours_to_here == ranked.c.rank).label("ours")
    ).cte("checked")
    ours_only = select(checked.c.id).where(checked.c.ours).scalar_subquery()
    leased = (
        update(outbox)
        # = ANY(ARRAY(subquery)): primary-key probes, never a hash join over the table
        .where(outbox.c.id == any_(func.array(ours_only)))
        .values(claim_token=TOKEN, available_at=LEASED_UNTIL)
        .returning(*outbox.c)
        .cte("leased")
    )
    # The claim's commit is on the commit->publish path: it skips the WAL flush
    # wait, set here rather than by a statement of its own (see
    # ``OutboxRelay._bookkeeping`` for why a lost lease is harmless).
    no_flush_wait = func.set_config("synchronous_commit", "off", true()).label("no_flush_wait")
    return select(leased, no_flush_wait).order_by(leased.c.id)


def claim(
    connection: Connection, *, now: datetime, batch_size: int, lease: timedelta, token: uuid.UUID
) -> list[OutboxMessage]:
    """Pick a batch and lease it to ``token``, inside the caller's (short) transaction."""
    settled_below = watermark(connection)  # before the rows' snapshot: see WATERMARK
    params = {"now": now, "batch_size": batch_size, "watermark": settled_below}
    if settled_below is not None:
        leasing = {"token": token, "until": now + lease}
        rows = connection.execute(leased_batch(), params | leasing).all()
        return [to_message(row) for row in rows]
    # SQLite: claims never overlap (one writer), so there is no other relay to check for.
    picked = [to_message(row) for row in connection.execute(candidates(False), params)]
    if picked:
        connection.execute(
            update(outbox)
            .where(among(outbox.c.id, [row.id for row in picked], connection))
            .values(claim_token=token, available_at=now + lease)
        )
    return picked


@functools.cache
def mark_published(dialect_name: str) -> Update:
    """The hot-path mark, built once: rows still leased to ``token`` become PUBLISHED.

    Parameters: ``token``, ``ids``, ``published_at``, ``tries``.
    """
    if dialect_name == "postgresql":
        ids = outbox.c.id == any_(bindparam("ids", type_=postgresql.ARRAY(BigInteger())))
    else:
        ids = outbox.c.id.in_(bindparam("ids", expanding=True))
    return (
        update(outbox)
        .where(outbox.c.claim_token == TOKEN, ids)
        .values(
            status=OutboxStatus.PUBLISHED.value,
            published_at=bindparam("published_at"),
            attempts=outbox.c.attempts + bindparam("tries"),
            claim_token=None,
            last_error=None,
        )
    )


def owned(token: uuid.UUID, ids: Sequence[int], bind: Connection | Engine) -> ColumnElement[bool]:
    """Rows still leased to ``token``: a relay whose lease ran out marks nothing."""
    return and_(outbox.c.claim_token == token, among(outbox.c.id, ids, bind))
