"""``RelayThread``: the relay as the host's background thread (or the CLI's foreground loop)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

from signal_mgmt.errors import (
    InvalidInputError,
    TransientStorageError,
    describe,
    translate_db_errors,
)
from signal_mgmt.outbox import wakeup
from signal_mgmt.outbox.listen import PgListener
from signal_mgmt.outbox.metrics import InFlightBatch, LatencyHistogram
from signal_mgmt.outbox.publishers.base import close_publisher
from signal_mgmt.outbox.relay import OutboxRelay
from signal_mgmt.outbox.store import outbox_counts
from signal_mgmt.storage.db import is_postgres

log = logging.getLogger(__name__)

STORAGE_RETRY_SECONDS = 1.0
RELEASE_WAIT = 0.5
MAX_POLL_INTERVAL = 3600.0
"""The longest idle wait between polls (SIGNAL_MGMT_RELAY_POLL_INTERVAL's bound too)."""
"""Seconds ``stop()`` gives the release of a stuck thread's batch."""
"""Pause after a transient database error (server restart, lost connection) before retrying."""


@dataclass(frozen=True)
class RelayHealth:
    """What a host checks (the Prometheus exporter exposes the same numbers)."""

    running: bool
    last_success: datetime | None
    """When this relay last published a batch."""
    pending: int
    in_flight: int
    dead: int
    oldest_pending_age: float | None
    """Seconds since the oldest pending event was emitted: the relay's lag."""
    published_total: int
    publish_errors: int
    dead_letters: int
    """Events this relay moved to DEAD."""
    latency: LatencyHistogram
    """commit->publish latency of the events this relay published."""
    publishing: InFlightBatch | None
    """The batch this relay is publishing now: size, first event id, since when, failed
    tries and why the last one failed. A long-running one is a broker outage (or a hang)."""

    @property
    def lag(self) -> float:
        return self.oldest_pending_age or 0.0


class RelayThread:
    """Runs ``relay`` until stopped, waking on emits, NOTIFY, or every ``poll_interval`` s.

    ``stop()`` interrupts a wait or a backoff at once, waits a little for the
    batch in hand (a publish or a database call that hangs is abandoned, its batch
    handed back to the other relays), and re-raises the exception that crashed
    the thread, if any.
    """

    def __init__(
        self,
        relay: OutboxRelay,
        *,
        poll_interval: float = 1.0,
        listen: bool = True,
        name: str = "signal-mgmt-relay",
    ) -> None:
        number = isinstance(poll_interval, int | float) and not isinstance(poll_interval, bool)
        if not (number and 0 < poll_interval <= MAX_POLL_INTERVAL):  # Event.wait(1e300) fails
            raise InvalidInputError(
                f"poll_interval must be in (0, {MAX_POLL_INTERVAL:g}] seconds",
                field="poll_interval",
                value=poll_interval,
            )
        self.relay = relay
        self.poll_interval = poll_interval
        self._listen = listen and is_postgres(relay.engine)
        self._name = name
        self._thread: threading.Thread | None = None
        self._doorbell = wakeup.Doorbell()
        self._running = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> RelayThread:
        if self._thread is not None:
            raise RuntimeError("a RelayThread starts once")
        self._thread = threading.Thread(target=self._main, name=self._name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 2.0) -> None:
        """Stop, wait up to ``timeout`` s, and re-raise the thread's crash if it had one.

        Bounded even when the thread is stuck (a hung publish, or a database call
        on a server lost from the network): after ``timeout`` its batch goes back
        to the other relays at once (``OutboxRelay.release_in_flight``, itself
        given ``RELEASE_WAIT`` s), and the daemon thread ends whenever its call
        returns (a database call fails within ``PG_CONNECT_DEFAULTS``' bounds).
        """
        self.relay.stopping.set()
        self._doorbell.ring()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                busy = self.relay.metrics.snapshot().in_flight or "a database call"
                released = self._release_in_flight()
                log.warning(
                    "outbox: relay thread still busy after %ss with %s, abandoned (%s)",
                    timeout,
                    busy,
                    "its batch released" if released else "no batch in hand",
                )
                return  # the thread closes its doorbell when it ends
        self._doorbell.close()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _release_in_flight(self) -> bool:
        """``release_in_flight`` in a helper thread, waited for at most ``RELEASE_WAIT`` s:
        closing a connection another thread is blocked on may block too."""
        released: list[bool] = []
        helper = threading.Thread(
            target=lambda: released.append(self.relay.release_in_flight()),
            name=f"{self._name}-release",
            daemon=True,
        )
        helper.start()
        helper.join(RELEASE_WAIT)
        return bool(released and released[0])

    def __enter__(self) -> RelayThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._running.is_set()

    @property
    def alive(self) -> bool:
        """Started and not yet ended (``running`` is only the loop itself)."""
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """Run a claim now instead of at the next poll."""
        self._doorbell.ring()

    def health(self) -> RelayHealth:
        counts = outbox_counts(self.relay.engine, self.relay.clock)
        metrics = self.relay.metrics.snapshot()
        return RelayHealth(
            running=self.running,
            last_success=metrics.last_success,
            pending=counts.pending,
            in_flight=counts.in_flight,
            dead=counts.dead,
            oldest_pending_age=counts.oldest_pending_age,
            published_total=metrics.published_total,
            publish_errors=metrics.publish_errors,
            dead_letters=metrics.dead_letters,
            latency=metrics.latency,
            publishing=metrics.in_flight,
        )

    def run(self) -> None:
        """The loop itself, in the calling thread (what ``signal-mgmt relay`` runs)."""
        listener = PgListener(self.relay.engine) if self._listen else None
        wakeup.register(self.relay.engine, self._doorbell)
        self._running.set()
        try:
            while not self.relay.stopping.is_set():
                # LISTEN before claiming: a commit before it is seen by the claim,
                # one after it is notified; none falls between the two.
                socket = listener.ensure() if listener else None
                if self._step() == 0:
                    self._doorbell.wait(self.poll_interval, also=socket)
                    if listener:
                        listener.drain()
        finally:
            self._running.clear()
            wakeup.unregister(self.relay.engine, self._doorbell)
            self._doorbell.close()
            if listener:
                listener.close()
            close_publisher(self.relay.publisher)

    def _step(self) -> int:
        try:
            with translate_db_errors():  # whichever part of a claim or mark met the error
                return self.relay.run_once()
        except TransientStorageError as error:
            # The database went away for a moment: not a reason to stop relaying.
            log.warning("outbox: database unavailable, retrying: %s", describe(error))
            self.relay.stopping.wait(STORAGE_RETRY_SECONDS)
            return 0

    def _main(self) -> None:
        try:
            self.run()
        except BaseException as error:  # re-raised by stop(): a crash is never swallowed
            log.exception("outbox relay thread crashed")
            self._error = error

    def __repr__(self) -> str:
        state: Any = "running" if self._running.is_set() else "stopped"
        return f"<RelayThread {self._name} {state}>"
