"""EntryCoordinator: runs the ENTRY path, one symbol at a time.

In one process, work is routed by symbol to a fixed lane (a single-thread
executor), so a symbol's candidates are handled in submission order while
other symbols run in parallel. Across processes the database serializes: the
symbol's advisory lock (PostgreSQL) and the unique keys of every table.
"""

from __future__ import annotations

import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType

from signal_mgmt.entry.candidate import SignalCandidate
from signal_mgmt.entry.qualification import EntryQualificationService, IntentResult
from signal_mgmt.entry.service import PublishResult, SignalService
from signal_mgmt.errors import InvalidInputError
from signal_mgmt.models import TradeIntentStatus
from signal_mgmt.tms.open import OpenResult, TradeOpener
from signal_mgmt.validation import require_count

_TO_OPEN = frozenset({TradeIntentStatus.APPROVED, TradeIntentStatus.PLACED})


@dataclass(frozen=True, slots=True)
class EntryOutcome:
    published: PublishResult
    intents: tuple[IntentResult, ...]
    trades: tuple[OpenResult, ...]


@dataclass(frozen=True, slots=True)
class ReplayReport:
    signals_finished: tuple[int, ...]
    intents_created: tuple[IntentResult, ...]
    trades_advanced: tuple[OpenResult, ...]


class EntryCoordinator:
    """Candidate -> signal -> deliveries -> intents -> (optionally) trades, per symbol in order."""

    def __init__(
        self,
        signals: SignalService,
        qualification: EntryQualificationService,
        opener: TradeOpener | None = None,
        *,
        lanes: int = 4,
    ) -> None:
        require_count(lanes, "lanes")
        self._signals = signals
        self._qualification = qualification
        self._opener = opener
        self._lanes = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"entry-lane-{n}")
            for n in range(lanes)
        ]

    def submit(self, candidate: SignalCandidate) -> Future[EntryOutcome]:
        """Queue ``candidate`` on its symbol's lane."""
        if not isinstance(candidate, SignalCandidate):
            raise InvalidInputError("submit takes a SignalCandidate", field="candidate")
        lane = zlib.crc32(candidate.symbol.encode()) % len(self._lanes)
        return self._lanes[lane].submit(self.process, candidate)

    def process(self, candidate: SignalCandidate) -> EntryOutcome:
        """The whole path for one candidate, in the calling thread; repeatable."""
        published = self._signals.publish(candidate)
        intents = tuple(self._qualification.qualify(d) for d in published.delivery_ids)
        trades: tuple[OpenResult, ...] = ()
        if self._opener is not None:
            opener = self._opener
            trades = tuple(
                opener.open(intent.trade_intent_id)
                for intent in intents
                if intent.status in _TO_OPEN
            )
        return EntryOutcome(published, intents, trades)

    def replay(self) -> ReplayReport:
        """On start: finish DETECTED signals, consume deliveries, advance live intents."""
        finished = tuple(self._signals.finish_detected())
        intents = tuple(self._qualification.qualify_pending())
        trades = tuple(self._opener.open_pending()) if self._opener is not None else ()
        return ReplayReport(finished, intents, trades)

    def close(self, wait: bool = True) -> None:
        for lane in self._lanes:
            lane.shutdown(wait=wait)

    def __enter__(self) -> EntryCoordinator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
