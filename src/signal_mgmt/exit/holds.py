"""Portfolio locks and trade freezes: the host's say over whether an exit may go out now."""

from __future__ import annotations

import threading
from typing import Protocol


class ExitHolds(Protocol):
    """Injected by the host; read by Stage B inside the decision's transaction."""

    def is_portfolio_locked(self, user_broker_id: int) -> bool: ...

    def is_trade_frozen(self, trade_id: int) -> bool: ...


class InMemoryExitHolds:
    """A thread-safe default for single-process hosts and tests."""

    def __init__(self) -> None:
        self._locked: set[int] = set()
        self._frozen: set[int] = set()
        self._lock = threading.Lock()

    def lock_portfolio(self, user_broker_id: int, locked: bool = True) -> None:
        with self._lock:
            (self._locked.add if locked else self._locked.discard)(user_broker_id)

    def freeze_trade(self, trade_id: int, frozen: bool = True) -> None:
        with self._lock:
            (self._frozen.add if frozen else self._frozen.discard)(trade_id)

    def is_portfolio_locked(self, user_broker_id: int) -> bool:
        with self._lock:
            return user_broker_id in self._locked

    def is_trade_frozen(self, trade_id: int) -> bool:
        with self._lock:
            return trade_id in self._frozen
