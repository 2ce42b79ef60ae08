"""The idempotent consumer: drop re-deliveries of our events on the consuming side.

Every broker publisher delivers at least once, so a consumer sees some events
twice. ``Inbox.handle`` records ``(consumer, event_id)`` in the ``inbox`` table
and runs the handler only if that row is new, in ONE transaction with the
handler's own writes:

* a re-delivery finds the row and is skipped;
* a handler that fails takes the row with it, so the next delivery runs it again;
* two processes handling one event at once: the second INSERT waits on the
  first one's uncommitted row (PostgreSQL) or on the write lock (SQLite), then
  skips if the first committed, or handles if it rolled back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, select

from signal_mgmt.errors import InvalidInputError, translate_db_errors
from signal_mgmt.market.clock import Clock, SystemClock, require_aware
from signal_mgmt.models import InboxRow
from signal_mgmt.outbox.cloudevents import CloudEvent
from signal_mgmt.outbox.events import OutboxMessage
from signal_mgmt.storage.db import Executor, transaction
from signal_mgmt.storage.idempotent import insert_ignore
from signal_mgmt.validation import require_count, require_text

EventRef = uuid.UUID | str | OutboxMessage | CloudEvent
"""What identifies a delivered event: its id, or the message / decoded CloudEvent itself."""

Handler = Callable[[Connection], object]
"""Does the consumer's work with the given connection, inside the inbox's transaction."""

_CONSUMER_MAX = 100  # the column's length


class Inbox:
    """Exactly-once handling per ``consumer`` on top of at-least-once delivery."""

    def __init__(self, engine: Engine, consumer: str, clock: Clock | None = None) -> None:
        require_text(consumer, "consumer", _CONSUMER_MAX)
        self.engine = engine
        self.consumer = consumer
        self.clock = clock or SystemClock()

    def handle(self, event: EventRef, handler: Handler, connection: Executor | None = None) -> bool:
        """Run ``handler`` unless this consumer already handled ``event``; True if it ran.

        With ``connection`` the work joins the caller's transaction inside a
        SAVEPOINT: a handler that raises leaves neither its writes nor the inbox
        row behind, even if the caller goes on and commits.
        """
        event_id = event_id_of(event)
        if not callable(handler):
            raise InvalidInputError("handler must be callable", field="handler", value=handler)
        row = {"consumer": self.consumer, "event_id": event_id, "received_at": self.clock.now()}
        with transaction(self.engine, connection) as conn:
            if connection is None:
                return self._record_then_run(conn, row, handler)
            with conn.begin_nested():
                return self._record_then_run(conn, row, handler)

    def seen(self, event: EventRef, connection: Executor | None = None) -> bool:
        """Whether this consumer has handled ``event`` (committed, or in ``connection``'s tx)."""
        query = select(InboxRow.event_id).where(
            InboxRow.consumer == self.consumer, InboxRow.event_id == event_id_of(event)
        )
        with transaction(self.engine, connection) as conn:
            return conn.execute(query).first() is not None

    def forget_before(
        self, cutoff: datetime, *, batch_size: int = 5000, connection: Executor | None = None
    ) -> int:
        """Delete this consumer's rows received before ``cutoff``, in bounded batches.

        An event re-delivered after its row is forgotten is handled again: keep
        rows for longer than the broker can re-deliver (retention, replays).
        """
        require_aware(cutoff, "cutoff")
        require_count(batch_size, "batch_size")
        old = (
            select(InboxRow.event_id)
            .where(InboxRow.consumer == self.consumer, InboxRow.received_at < cutoff)
            .limit(batch_size)
            .scalar_subquery()
        )
        statement = delete(InboxRow).where(
            InboxRow.consumer == self.consumer, InboxRow.event_id.in_(old)
        )
        removed = 0
        while True:
            # One short transaction per batch (unless the caller gives one).
            with transaction(self.engine, connection) as conn:
                count = conn.execute(statement).rowcount
            removed += count
            if count < batch_size:
                return removed

    def _record_then_run(self, conn: Connection, row: dict[str, object], handler: Handler) -> bool:
        statement = insert_ignore(conn, InboxRow, ["consumer", "event_id"]).returning(
            InboxRow.event_id
        )
        with translate_db_errors():
            inserted = conn.execute(statement, row).first() is not None
        if not inserted:
            return False
        handler(conn)
        return True


def event_id_of(event: EventRef) -> uuid.UUID:
    """The event_id of anything ``Inbox`` accepts; anything else is ``InvalidInputError``."""
    if isinstance(event, OutboxMessage):
        return event.event_id
    if isinstance(event, CloudEvent):
        return event.id
    if isinstance(event, uuid.UUID):
        return event
    if isinstance(event, str):
        try:
            return uuid.UUID(event)
        except ValueError:
            raise InvalidInputError("not an event id", field="event", value=event) from None
    raise InvalidInputError("not an event or event id", field="event", value=event)
