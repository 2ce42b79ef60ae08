"""Waking the relay the moment an emit commits.

Two doorbells ring a relay:

* in-process: ``emit`` flags its connection; when that connection's outermost
  transaction commits, every relay of the same database in this process is
  woken at once (SQLite has no LISTEN, so this is its only fast path);
* PostgreSQL: a statement trigger on ``outbox`` (migration 0001) runs
  ``pg_notify(CHANNEL)``, delivered by the server at commit to every relay
  that LISTENs, in any process (the name is repeated in the migration).

Both only shorten a wait: a relay polls anyway, so a lost ring delays an
event by at most one poll interval and never loses it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import weakref
from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, Engine, event

CHANNEL = "signal_mgmt_outbox"
_EMITTED = "signal_mgmt.outbox.emitted"

log = logging.getLogger(__name__)

_lock = threading.Lock()
_doorbells: dict[str, set[Doorbell]] = defaultdict(set)
_hooked_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


class Doorbell:
    """A wake-up that a thread can wait on together with a socket (select on a pipe)."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._closed = False
        self._closing = threading.Lock()  # a ring never writes to a closed (reused) fd

    def ring(self) -> None:
        with self._closing:
            if self._closed:
                return
            with contextlib.suppress(BlockingIOError):  # pipe full: a ring is already waiting
                os.write(self._write, b"\0")

    def wait(self, timeout: float, *, also: int | None = None) -> bool:
        """Wait up to ``timeout`` s for a ring (or ``also`` readable); True if woken."""
        watched = [self._read] if also is None else [self._read, also]
        ready, _, _ = select.select(watched, [], [], timeout)
        self._drain()
        return bool(ready)

    def _drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass

    def close(self) -> None:
        with self._closing:
            if not self._closed:
                self._closed = True
                os.close(self._read)
                os.close(self._write)


def database_key(bind: Engine | Connection) -> str:
    """Which database a bind points to, as the registry keys it."""
    return bind.engine.url.render_as_string(hide_password=True)


def register(engine: Engine, doorbell: Doorbell) -> None:
    """Ring ``doorbell`` whenever an emit into ``engine``'s database commits here."""
    _hook(engine)
    with _lock:
        _doorbells[database_key(engine)].add(doorbell)


def unregister(engine: Engine, doorbell: Doorbell) -> None:
    with _lock:
        _doorbells[database_key(engine)].discard(doorbell)


def ring_all(key: str) -> None:
    with _lock:
        doorbells = list(_doorbells.get(key, ()))
    for doorbell in doorbells:
        doorbell.ring()


def mark_emitted(connection: Connection) -> None:
    """Called by ``emit``: ring this database's relays when the transaction commits."""
    _hook(connection.engine)
    connection.info[_EMITTED] = True


def _hook(engine: Engine) -> None:
    """Listen to commits and rollbacks of ``engine`` only (never of the Engine class:
    a host's other engines are none of our business)."""
    if engine in _hooked_engines:
        return
    with _lock:
        if engine not in _hooked_engines:
            event.listen(engine, "commit", _on_commit)
            event.listen(engine, "rollback", _on_rollback)
            _hooked_engines.add(engine)


# The hooks run inside the host's commit and rollback: they must never raise.
# An invalidated connection (server restart) is skipped: touching its ``info``
# would raise PendingRollbackError in place of the real error, and the pool
# clears that ``info`` with the dead connection anyway.


def _on_commit(connection: Connection) -> None:
    try:
        if not connection.invalidated and connection.info.pop(_EMITTED, False):
            ring_all(database_key(connection))
    except Exception:  # a lost ring only delays the relay until its next poll
        log.debug("outbox: commit hook failed", exc_info=True)


def _on_rollback(connection: Connection, *_args: Any) -> None:
    try:
        if not connection.invalidated:
            connection.info.pop(_EMITTED, None)
    except Exception:
        log.debug("outbox: rollback hook failed", exc_info=True)
