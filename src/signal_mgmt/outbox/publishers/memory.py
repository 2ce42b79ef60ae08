"""A publisher that keeps what it receives: for tests and embedded hosts."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence

from signal_mgmt.errors import PublishError
from signal_mgmt.outbox.events import OutboxMessage


class InMemoryPublisher:
    """Records every delivered message; can be told to fail the next N calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[OutboxMessage] = []
        self._failures_left = 0
        self._transient = True
        self.calls = 0

    def fail_next(self, times: int, *, transient: bool = True) -> None:
        """Make the next ``times`` calls raise ``PublishError(transient=transient)``."""
        with self._lock:
            self._failures_left = times
            self._transient = transient

    def publish(self, messages: Sequence[OutboxMessage]) -> None:
        with self._lock:
            self.calls += 1
            if self._failures_left > 0:
                self._failures_left -= 1
                kind = "transient" if self._transient else "permanent"
                raise PublishError(
                    f"in-memory publisher told to fail ({kind})", transient=self._transient
                )
            self._messages.extend(messages)

    @property
    def messages(self) -> list[OutboxMessage]:
        """Every delivery, re-deliveries included, in delivery order."""
        with self._lock:
            return list(self._messages)

    def event_ids(self) -> list[uuid.UUID]:
        """Distinct event ids in order of first delivery."""
        return list(dict.fromkeys(message.event_id for message in self.messages))
