"""PostgreSQL LISTEN for the relay's wake-up (the outbox's INSERT trigger NOTIFYs at commit)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine

from signal_mgmt.outbox.wakeup import CHANNEL

log = logging.getLogger(__name__)


class PgListener:
    """One autocommit connection that LISTENs on the outbox channel.

    ``fileno()`` is select-able; ``drain()`` consumes what arrived. If the
    connection breaks (server restart) the listener closes itself and the relay
    falls back to polling until ``ensure()`` reconnects it on the next wait.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._raw: Any = None

    def ensure(self) -> int | None:
        """The socket to select on, connecting if needed; None while unavailable."""
        if self._raw is None:
            try:
                raw = self._engine.raw_connection()
                raw.driver_connection.autocommit = True  # type: ignore[union-attr]
                raw.driver_connection.execute(f"LISTEN {CHANNEL}")  # type: ignore[union-attr]
            except Exception as error:  # polling covers any failure here
                log.warning("outbox: LISTEN unavailable, polling only: %s", error)
                return None
            self._raw = raw
        return int(self._raw.driver_connection.fileno())

    def drain(self) -> int:
        """Consume arrived notifications; return how many."""
        if self._raw is None:
            return 0
        try:
            return sum(1 for _ in self._raw.driver_connection.notifies(timeout=0))
        except Exception as error:  # a broken LISTEN connection only delays
            log.warning("outbox: LISTEN connection lost, reconnecting later: %s", error)
            self.close()
            return 0

    def close(self) -> None:
        if self._raw is not None:
            raw, self._raw = self._raw, None
            try:
                raw.invalidate()  # never hand a LISTENing autocommit connection back to the pool
            except Exception:  # closing a broken socket may fail too
                log.debug("outbox: closing the LISTEN connection failed", exc_info=True)
