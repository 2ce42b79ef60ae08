"""The relay: claim a batch of pending events, publish it, mark it.

Delivery is at-least-once: a relay that dies after publishing and before
marking leaves its lease to run out, and the batch is published again (same
``event_id``, so consumers drop the duplicate). Order per ``partition_key`` is
kept by the claim (see ``outbox/claim.py``) and by the DEAD policy: an event
the broker refuses for good (a permanent ``PublishError``) goes DEAD and BLOCKS
the later events of its key until an operator retries it (``outbox retry-dead``)
or parks it (``outbox park``); strict order is never broken silently. A
transient error is never a reason for DEAD: the relay backs off (capped at
``backoff_max``) and keeps trying until the broker is back or it is stopped.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text, update
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_when_event_set,
    wait_random_exponential,
)

from signal_mgmt.errors import InvalidInputError, PublishError, StorageError, describe
from signal_mgmt.market.clock import Clock, SystemClock
from signal_mgmt.models import OutboxStatus
from signal_mgmt.outbox.claim import Claim, claimed, extend_lease, mark_published, owned
from signal_mgmt.outbox.events import OutboxMessage
from signal_mgmt.outbox.metrics import RelayMetrics
from signal_mgmt.outbox.publishers.base import Publisher
from signal_mgmt.outbox.table import due_now, outbox
from signal_mgmt.settings import Settings
from signal_mgmt.storage.db import transaction
from signal_mgmt.validation import MAX_DURATION, require_count

log = logging.getLogger(__name__)

_NO_FLUSH_WAIT = text("SET LOCAL synchronous_commit TO OFF")

DEFAULT_LEASE = timedelta(seconds=30)
MAX_ERROR_LENGTH = 2000


def _is_transient(error: BaseException) -> bool:
    return isinstance(error, PublishError) and error.transient


class OutboxRelay:
    """Drains the outbox of ``engine`` to ``publisher``; ``run_once`` does one batch.

    PostgreSQL: a claimed batch is held by key locks on the claim's connection
    until it is marked; another relay takes the keys over as soon as that
    connection dies. SQLite: ``lease`` bounds how long a claimed batch may stay
    unmarked; keep it above the publisher's worst-case publish time. ``sleep`` waits between
    retries (tests pass ``list.append``); by default it waits on ``stopping``,
    so ``stopping.set()`` cuts a backoff short. ``max_attempts`` no longer gives
    up: once an event has been tried that often, each further failure is logged
    at ERROR instead of WARNING (alert on ``health().oldest_pending_age`` too).
    """

    def __init__(
        self,
        engine: Engine,
        publisher: Publisher,
        *,
        clock: Clock | None = None,
        batch_size: int = 500,
        max_attempts: int = 10,
        backoff_initial: float = 0.05,
        backoff_max: float = 30.0,
        lease: timedelta = DEFAULT_LEASE,
        sleep: Callable[[float], Any] | None = None,
        stopping: threading.Event | None = None,
        metrics: RelayMetrics | None = None,
    ) -> None:
        require_count(batch_size, "batch_size")
        require_count(max_attempts, "max_attempts")
        _require(0 < backoff_initial <= backoff_max, "backoff_initial", backoff_initial)
        _require(isinstance(lease, timedelta) and ZERO < lease <= MAX_DURATION, "lease", lease)
        self.engine = engine
        self.publisher = publisher
        self.clock: Clock = clock or SystemClock()
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.lease = lease
        self.stopping = stopping or threading.Event()
        self._sleep: Callable[[float], Any] = sleep or self._wait_unless_stopped
        self.metrics = metrics or RelayMetrics()
        self.claim: Claim | None = None
        """The batch in hand, if any; ``claim.release()`` hands it back to the other relays."""

    @classmethod
    def from_settings(
        cls, engine: Engine, publisher: Publisher, settings: Settings, **overrides: Any
    ) -> OutboxRelay:
        options: dict[str, Any] = {
            "batch_size": settings.relay_batch_size,
            "max_attempts": settings.relay_max_attempts,
            "backoff_initial": settings.relay_backoff_initial,
            "backoff_max": settings.relay_backoff_max,
            **overrides,
        }
        return cls(engine, publisher, **options)

    @contextmanager
    def _bookkeeping(self) -> Iterator[Connection]:
        """A transaction of the relay's own (lease renewal, mark).

        On PostgreSQL it commits without waiting for the WAL flush: if the server
        crashes and loses it, a lease or a mark is lost, and the batch is only
        published again (at-least-once; commits are lost as a suffix, in order,
        so per-key order holds). That fsync would otherwise be most of the
        commit->publish latency.
        """
        with transaction(self.engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(_NO_FLUSH_WAIT)
            yield conn

    def _wait_unless_stopped(self, seconds: float) -> None:
        self.stopping.wait(seconds)

    def run_once(self) -> int:
        """Claim one batch, publish it, mark it.

        Returns how many events the claim took (published, or moved to DEAD):
        0 means there was nothing to do. ``metrics`` counts what was published.
        """
        if self.stopping.is_set():
            return 0
        with claimed(
            self.engine,
            clock=self.clock,
            batch_size=self.batch_size,
            lease=self.lease,
            token=uuid.uuid4(),
        ) as held:
            self.claim = held
            try:
                if held.messages:
                    self._deliver(held.messages, held.token)
            finally:
                self.claim = None
        return len(held.messages)

    def release_in_flight(self) -> bool:
        """Hand the batch in hand back to the other relays now, from any thread
        (``RelayThread.stop()`` while a publish hangs); False if there is none.

        Whatever the hung publish does later is a re-delivery: its mark changes
        nothing the next holder did not, and that holder publishes the key from
        its first open event again, so first deliveries stay in order.
        """
        claim = self.claim
        if claim is None:
            return False
        if self.engine.dialect.name == "postgresql":
            claim.release()  # the key locks go with their connection; no row to touch
            return True
        try:
            self._mark(claim.token, claim.messages, 0)  # SQLite: the lease ends now
        except StorageError as error:  # no database: the lease runs out by itself
            log.warning("outbox: could not release the batch in flight: %s", describe(error))
        return True

    def _deliver(self, batch: Sequence[OutboxMessage], token: uuid.UUID) -> int:
        tries, error = self._publish(batch, token)
        if error is None:
            self._mark(token, batch, tries, status=OutboxStatus.PUBLISHED)
            self.metrics.published(batch, self.clock.now())
            return len(batch)
        if error.transient:  # only when stopping: transient errors are retried until then
            self._mark(token, batch, tries, error=error)  # released, for whoever runs next
            return 0
        if len(batch) > 1:
            return self._deliver_one_by_one(batch, token)
        log.error("outbox: %d event(s) DEAD after %d tries: %s", len(batch), tries, describe(error))
        self._mark(token, batch, tries, status=OutboxStatus.DEAD, error=error)
        self.metrics.dead(len(batch))
        return 0

    def _deliver_one_by_one(self, batch: Sequence[OutboxMessage], token: uuid.UUID) -> int:
        """A broker refused the batch: find the poison event(s), deliver the rest in order."""
        published = 0
        blocked: set[str] = set()
        for message in batch:
            if message.partition_key in blocked or self.stopping.is_set():
                self._mark(token, [message], 0)  # released: its key waits behind a DEAD event
                continue
            delivered = self._deliver([message], token)
            published += delivered
            if not delivered:
                blocked.add(message.partition_key)
        return published

    def _publish(
        self, batch: Sequence[OutboxMessage], token: uuid.UUID
    ) -> tuple[int, PublishError | None]:
        tries = 0
        earlier = max(message.attempts for message in batch)
        cause = ""

        def attempt() -> None:
            nonlocal tries, cause
            if self.stopping.is_set():
                raise PublishError("relay stopping", transient=True)
            tries += 1
            try:
                self.publisher.publish(batch)
            except PublishError as error:
                cause = describe(error)
                self.metrics.publish_failed(cause)
                raise

        def renew_lease(state: RetryCallState) -> None:
            pause = state.next_action.sleep if state.next_action else 0.0
            level = logging.ERROR if earlier + tries >= self.max_attempts else logging.WARNING
            log.log(
                level,
                "outbox: publish of %d event(s) from %s failed (try %d): %s; retrying in %.3fs",
                len(batch),
                batch[0].event_id,
                earlier + tries,
                cause,
                pause,
            )
            until = self.clock.now() + timedelta(seconds=pause) + self.lease
            try:
                with self._bookkeeping() as conn:
                    extend_lease(conn, token, _ids(batch), until)
            except StorageError as error:  # the database is away too: the lease may run out
                log.warning("outbox: could not extend the lease: %s", describe(error))

        retrying = Retrying(
            retry=retry_if_exception(_is_transient),
            stop=stop_when_event_set(self.stopping),
            wait=wait_random_exponential(multiplier=self.backoff_initial, max=self.backoff_max),
            sleep=self._sleep,
            before_sleep=renew_lease,
            reraise=True,
        )
        self.metrics.publishing(batch, self.clock.now())
        try:
            retrying(attempt)
        except PublishError as error:
            return tries, error
        finally:
            self.metrics.settled()
        return tries, None

    def _mark(
        self,
        token: uuid.UUID,
        batch: Sequence[OutboxMessage],
        tries: int,
        *,
        status: OutboxStatus | None = None,
        error: PublishError | None = None,
    ) -> None:
        """End the lease: PUBLISHED, DEAD, or (no status) released to be claimed again now."""
        now = self.clock.now()
        if status is OutboxStatus.PUBLISHED:
            marked = mark_published(
                self.engine, self.claim, token, _ids(batch), published_at=now, tries=tries
            )
            self._check_lease(marked, batch)
            return
        values: dict[str, Any] = {"claim_token": None, "attempts": outbox.c.attempts + tries}
        if error is not None:
            values["last_error"] = describe(error)[:MAX_ERROR_LENGTH]
        if status is not None:
            values["status"] = status.value
        else:
            values["available_at"] = due_now(self.clock, self.engine)
        with self._bookkeeping() as conn:
            marked = conn.execute(
                update(outbox).where(owned(token, _ids(batch), self.engine)).values(**values)
            ).rowcount
        self._check_lease(marked, batch)

    @staticmethod
    def _check_lease(marked: int, batch: Sequence[OutboxMessage]) -> None:
        if marked < len(batch):
            # The lease ran out and another relay took the batch over: it
            # publishes again and marks; we changed only what we still held.
            log.warning("outbox: lease lost on %d of %d event(s)", len(batch) - marked, len(batch))


def _ids(batch: Sequence[OutboxMessage]) -> list[int]:
    return [message.id for message in batch]


ZERO = timedelta(0)


def _require(ok: bool, field: str, value: object) -> None:
    if not ok:
        raise InvalidInputError(f"invalid relay option {field}={value!r}", field=field, value=value)
