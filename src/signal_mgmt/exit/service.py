"""ExitIntentService: Stage B of EXIT, the single writer of exit_signals and exit_intents.

``on_exit_detected`` takes one ``ExitCandidate`` and, in ONE transaction:

1. takes the trade's exit lock (keyed lock in process, advisory lock across);
2. starts a new episode, or stops here if the condition has neither cleared
   nor outlived its cooldown (``SUPPRESSED``: nothing is written);
3. reads the trade's exit intents once (live exit, exited quantity, FILLED);
4. inserts ``exit_signals`` PUBLISHED, qualifies the exit with the pure Stage B
   rules and inserts ``exit_intents`` APPROVED or REJECTED, emitting
   EXIT_SIGNAL_PUBLISHED and EXIT_INTENT_APPROVED/REJECTED in one outbox INSERT.

Rows are written in their decided state: a DETECTED or PENDING row that the same
transaction would move on at once is invisible to everyone else, so its
guarded UPDATE could not fail. DETECTED and PENDING remain for what a crash or a
pre-emption leaves, finished by ``replay`` through the guarded transitions.
A candidate that arrives while another exit of the trade is live is recorded
as REJECTED (EXIT_ALREADY_LIVE); the partial unique index keeps one live exit.
A protective exit (stop, trailing, time, manual) that meets a live TARGET
pre-empts it instead: the target is marked for cancellation and the signal
waits in DETECTED until the cancel has settled (``replay`` finishes it, for the
quantity the target left open). Exits never hold more than the entry: the
``exit_budgets`` triggers refuse it in the database.

Episodes run on the candidate's own clock (``detected_at`` / ``cleared_at``):
input older than the episode state it would change is refused as STALE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from signal_mgmt.errors import InvalidInputError
from signal_mgmt.execution.broker import BrokerConnectivity
from signal_mgmt.execution.exit_events import (
    EXIT_INTENT_APPROVED,
    EXIT_INTENT_REJECTED,
    EXIT_SIGNAL_PUBLISHED,
    ExitIntentDecided,
    ExitSignalPublished,
    exit_event,
)
from signal_mgmt.exit.candidate import ExitCandidate, ExitCleared
from signal_mgmt.exit.episodes import ClearOutcome, episode_state, rearm, start_episode
from signal_mgmt.exit.facts import (
    ExitHistory,
    LiveExit,
    TradeContext,
    exit_history,
    load_trade_context,
)
from signal_mgmt.exit.holds import ExitHolds, InMemoryExitHolds
from signal_mgmt.exit.settings import ExitSettings, load_exit_settings
from signal_mgmt.market.calendar import MarketCalendar, nse_calendar
from signal_mgmt.market.clock import Clock
from signal_mgmt.models import (
    ExitIntent,
    ExitIntentStatus,
    ExitReason,
    ExitSignal,
    ExitSignalStatus,
)
from signal_mgmt.outbox.emit import emit
from signal_mgmt.outbox.events import Event
from signal_mgmt.qualification.exit_rules import (
    DEFAULT_EXIT_RULES,
    ExitDecision,
    ExitFacts,
    ExitOrderPlan,
    ExitRejectReason,
    ExitRule,
    preempts,
    qualify_exit,
)
from signal_mgmt.storage.db import Executor, transaction
from signal_mgmt.storage.locks import KeyedLocks, lock_trade
from signal_mgmt.storage.records import ExitIntentRecord, ExitSignalRecord
from signal_mgmt.storage.state import transition


class ExitOutcome(StrEnum):
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    SUPPRESSED = "SUPPRESSED"  # same episode (not re-armed, cooldown running), or an exit
    # of the trade already waits for a pre-empted target: nothing written
    STALE = "STALE"  # observed before the episode's last firing or clear: nothing written
    PREEMPTING = "PREEMPTING"  # a live TARGET is being cancelled; the signal waits in DETECTED


@dataclass(frozen=True, slots=True)
class ExitDetectionResult:
    outcome: ExitOutcome
    trade_id: int
    reason: ExitReason
    episode_id: int | None
    exit_signal_id: int | None = None
    exit_intent_id: int | None = None
    reason_codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ExitClearResult:
    outcome: ClearOutcome
    trade_id: int
    reason: ExitReason
    reason_codes: tuple[str, ...] = ()

    @property
    def rearmed(self) -> bool:
        return self.outcome is ClearOutcome.REARMED


@dataclass(frozen=True, slots=True)
class ExitReplayReport:
    signals_finished: int
    intents_decided: int


class ExitIntentService:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        calendar: MarketCalendar | None = None,
        *,
        settings: ExitSettings | None = None,
        holds: ExitHolds | None = None,
        rules: Sequence[ExitRule] = DEFAULT_EXIT_RULES,
        connectivity: BrokerConnectivity | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.calendar: MarketCalendar = calendar if calendar is not None else nse_calendar()
        self.settings = settings if settings is not None else load_exit_settings()
        self.holds: ExitHolds = holds if holds is not None else InMemoryExitHolds()
        self.rules = tuple(rules)
        self.connectivity = connectivity
        """The live session state, read with ``user_brokers.connected`` (None: the row alone)."""
        self._locks = KeyedLocks()

    @property
    def cooldown(self) -> timedelta:
        return self.settings.cooldown

    # ------------------------------------------------------------------ public API

    def on_exit_detected(
        self, candidate: ExitCandidate, connection: Executor | None = None
    ) -> ExitDetectionResult:
        """Record a detected exit: new episode, signal and qualified intent; SUPPRESSED
        while the episode holds; STALE (nothing written) for a candidate observed
        before the episode's last firing or clear; PREEMPTING while a resting
        TARGET it pre-empts is being cancelled."""
        if not isinstance(candidate, ExitCandidate):
            raise InvalidInputError("expected an ExitCandidate", field="candidate", value=candidate)
        self.require_not_ahead(candidate.detected_at, "detected_at")
        trade_id, reason = candidate.trade_id, candidate.reason
        with self._locks.hold(trade_id), transaction(self.engine, connection) as conn:
            lock_trade(conn, trade_id)
            context = load_trade_context(conn, trade_id)
            if candidate.price % context.tick_size != 0:
                raise InvalidInputError(
                    f"price {candidate.price} is not on the tick {context.tick_size}",
                    field="price",
                    value=candidate.price,
                )
            waiting = _waiting_signal(conn, trade_id)
            if waiting is not None:  # it exits all that the cancel leaves: one is enough
                signal_id, episode_id = waiting
                return ExitDetectionResult(
                    ExitOutcome.SUPPRESSED, trade_id, reason, episode_id, signal_id
                )
            now, at = self.clock.now(), candidate.detected_at
            episode = start_episode(conn, trade_id, reason, at, self.cooldown)
            if episode is None:
                state = episode_state(conn, trade_id, reason)
                held = None if state is None else state.episode_id
                if state is not None and state.is_stale(at):
                    stale = (ExitRejectReason.STALE_CANDIDATE.value,)
                    return ExitDetectionResult(
                        ExitOutcome.STALE, trade_id, reason, held, reason_codes=stale
                    )
                return ExitDetectionResult(ExitOutcome.SUPPRESSED, trade_id, reason, held)
            history = exit_history(conn, trade_id)
            preempting = self._preempt(conn, reason, history.live, now)
            # Written PUBLISHED at once unless it waits for a pre-empted target: a
            # DETECTED -> PUBLISHED UPDATE would guard a row no one else can see yet.
            status = ExitSignalStatus.DETECTED if preempting else ExitSignalStatus.PUBLISHED
            inserted = conn.execute(
                insert(ExitSignal).returning(*ExitSignal.__table__.c),
                {
                    "trade_id": trade_id,
                    "exit_reason": reason,
                    "episode_id": episode,
                    "status": status,
                    "price": candidate.price,
                    "trigger_level": candidate.trigger_level,
                    "detected_at": candidate.detected_at,
                    "published_at": None if preempting else now,
                    "created_at": now,
                },
            ).one()
            signal = ExitSignalRecord.from_row(inserted)
            if preempting:
                return ExitDetectionResult(
                    ExitOutcome.PREEMPTING, trade_id, reason, episode, signal.id
                )
            return self._qualify(conn, signal, context, history, now)

    def on_exit_cleared(
        self, cleared: ExitCleared, connection: Executor | None = None
    ) -> ExitClearResult:
        """The condition stopped holding at ``cleared_at``: re-arm its episode.

        A clear not newer than the episode's firing is STALE and changes nothing.
        """
        if not isinstance(cleared, ExitCleared):
            raise InvalidInputError("expected an ExitCleared", field="cleared", value=cleared)
        self.require_not_ahead(cleared.cleared_at, "cleared_at")
        trade_id, reason = cleared.trade_id, cleared.reason
        with self._locks.hold(trade_id), transaction(self.engine, connection) as conn:
            lock_trade(conn, trade_id)
            outcome = rearm(conn, trade_id, reason, cleared.cleared_at)
        codes = (ExitRejectReason.STALE_CLEAR.value,) if outcome is ClearOutcome.STALE else ()
        return ExitClearResult(outcome, trade_id, reason, codes)

    def replay(self, connection: Executor | None = None) -> ExitReplayReport:
        """Finish what a crash left: signals still DETECTED, intents still PENDING.

        Also what finishes a protective signal that waited for the TARGET it
        pre-empted: once the cancel has settled, it is decided for the quantity
        left open. A host runs it after each reconcile pass.

        Each is finished under its trade's lock by the same guarded transitions as
        the live path, so running the sweep twice, or next to live traffic, finishes
        every row exactly once.
        """
        with transaction(self.engine, connection) as conn:
            signal_ids = conn.execute(
                select(ExitSignal.id).where(ExitSignal.status == ExitSignalStatus.DETECTED)
            ).scalars()
            pending = conn.execute(
                select(ExitIntent.id).where(ExitIntent.status == ExitIntentStatus.PENDING)
            ).scalars()
            signal_list, pending_list = list(signal_ids), list(pending)
        finished = sum(self._replay_signal(sid, connection) for sid in signal_list)
        decided = sum(self._replay_pending(iid, connection) for iid in pending_list)
        return ExitReplayReport(signals_finished=finished, intents_decided=decided)

    def require_not_ahead(self, at: datetime, field: str) -> None:
        """Refuse an observation stamped beyond ``max_clock_skew`` ahead of the clock:
        a future firing or clear would hold its episode (and make every correctly
        stamped candidate STALE) until that time."""
        limit = self.clock.now() + self.settings.max_clock_skew
        if at > limit:
            raise InvalidInputError(
                f"{field} {at.isoformat()} is ahead of the clock (limit {limit.isoformat()})",
                field=field,
                value=at,
            )

    # ------------------------------------------------------------------ replay

    def _replay_signal(self, signal_id: int, connection: Executor | None) -> bool:
        trade_id = self._trade_of(ExitSignal, signal_id, connection)
        with self._locks.hold(trade_id), transaction(self.engine, connection) as conn:
            lock_trade(conn, trade_id)
            signal = _load_signal(conn, signal_id)
            if signal.status != ExitSignalStatus.DETECTED:
                return False
            context = load_trade_context(conn, trade_id)
            result = self._finish_signal(conn, signal, context, self.clock.now())
            return result.outcome is not ExitOutcome.PREEMPTING

    def _replay_pending(self, intent_id: int, connection: Executor | None) -> bool:
        trade_id = self._trade_of(ExitIntent, intent_id, connection)
        with self._locks.hold(trade_id), transaction(self.engine, connection) as conn:
            lock_trade(conn, trade_id)
            intent = _load_intent(conn, intent_id)
            if intent.status != ExitIntentStatus.PENDING:
                return False
            context = load_trade_context(conn, trade_id)
            signal = _load_signal(conn, intent.exit_signal_id)
            now = self.clock.now()
            history = exit_history(conn, trade_id, other_than=intent_id)
            facts = self._facts(context, signal, now, history)
            self._decide(conn, intent, qualify_exit(facts, self.rules), now)
            return True

    def _trade_of(
        self, entity: type[ExitSignal | ExitIntent], row_id: int, connection: Executor | None
    ) -> int:
        with transaction(self.engine, connection) as conn:
            return int(
                conn.execute(select(entity.trade_id).where(entity.id == row_id)).scalar_one()
            )

    # ------------------------------------------------------------------ the transaction's steps

    def _finish_signal(
        self, conn: Connection, signal: ExitSignalRecord, context: TradeContext, now: datetime
    ) -> ExitDetectionResult:
        """Replay of a signal left DETECTED (a crash, or a pre-empted target now settled)."""
        history = exit_history(conn, context.trade_id)
        if self._preempt(conn, signal.exit_reason, history.live, now):
            # Decided by ``replay`` once the execution side has settled the target.
            return ExitDetectionResult(
                ExitOutcome.PREEMPTING,
                context.trade_id,
                signal.exit_reason,
                signal.episode_id,
                signal.id,
            )
        transition(
            conn,
            ExitSignal,
            signal.id,
            expected=[ExitSignalStatus.DETECTED],
            target=ExitSignalStatus.PUBLISHED,
            values={"published_at": now},
        )
        return self._qualify(conn, signal, context, history, now)

    @staticmethod
    def _preempt(
        conn: Connection, reason: ExitReason, current: LiveExit | None, now: datetime
    ) -> bool:
        """Whether ``reason`` pre-empts the live exit; if so, that exit is marked for
        cancellation (once) and the new signal waits in DETECTED."""
        if current is None or not preempts(reason, current.reason):
            return False
        if not current.preempted:
            conn.execute(
                update(ExitIntent)
                .where(ExitIntent.id == current.id, ExitIntent.preempted_at.is_(None))
                .values(preempted_at=now, updated_at=now)
            )
        return True

    def _qualify(
        self,
        conn: Connection,
        signal: ExitSignalRecord,
        context: TradeContext,
        history: ExitHistory,
        now: datetime,
    ) -> ExitDetectionResult:
        """The PUBLISHED signal's intent, written with its decision, and both events.

        The intent is inserted APPROVED or REJECTED at once: PENDING -> decided as a
        second UPDATE would guard a row no one else can see yet. The partial unique
        index (one live exit) and the ``exit_budgets`` triggers check the INSERT.
        A candidate that meets a live exit is REJECTED (EXIT_ALREADY_LIVE).
        """
        payload = ExitSignalPublished(
            exit_signal_id=signal.id,
            trade_id=signal.trade_id,
            exit_reason=signal.exit_reason,
            episode_id=signal.episode_id,
            price=signal.price,
            detected_at=signal.detected_at,
        )
        # Announced together with the decision: one outbox INSERT per detection.
        published = exit_event(
            EXIT_SIGNAL_PUBLISHED, "exit_signal", signal.id, signal.trade_id, payload
        )
        decision = qualify_exit(self._facts(context, signal, now, history), self.rules)
        approved = decision.approved and history.live is None
        status = ExitIntentStatus.APPROVED if approved else ExitIntentStatus.REJECTED
        inserted = conn.execute(
            insert(ExitIntent).returning(*ExitIntent.__table__.c),
            {
                "exit_signal_id": signal.id,
                "trade_id": context.trade_id,
                "user_broker_id": context.user_broker_id,
                "exit_reason": signal.exit_reason,
                "episode_id": signal.episode_id,
                "status": status,
                "reason_codes": [code.value for code in decision.reason_codes],
                **_plan_columns(decision.plan),
                "filled_quantity": 0,
                "created_at": now,
                "decided_at": now,
                "updated_at": now,
            },
        ).one()
        intent = ExitIntentRecord.from_row(inserted)
        self._announce(conn, intent, status, decision, published)
        outcome = ExitOutcome.APPROVED if approved else ExitOutcome.REJECTED
        return self._result(intent, outcome, decision)

    def _decide(
        self,
        conn: Connection,
        intent: ExitIntentRecord,
        decision: ExitDecision,
        now: datetime,
        *also: Event[Any],
    ) -> ExitDetectionResult:
        target = ExitIntentStatus.APPROVED if decision.approved else ExitIntentStatus.REJECTED
        plan = decision.plan
        transition(
            conn,
            ExitIntent,
            intent.id,
            expected=[ExitIntentStatus.PENDING],
            target=target,
            values={
                "reason_codes": [code.value for code in decision.reason_codes],
                **_plan_columns(plan),
                "decided_at": now,
                "updated_at": now,
            },
        )
        self._announce(conn, intent, target, decision, *also)
        outcome = ExitOutcome.APPROVED if decision.approved else ExitOutcome.REJECTED
        return self._result(intent, outcome, decision)

    def _announce(
        self,
        conn: Connection,
        intent: ExitIntentRecord,
        status: ExitIntentStatus,
        decision: ExitDecision,
        *also: Event[Any],
    ) -> None:
        plan = decision.plan
        payload = ExitIntentDecided(
            exit_intent_id=intent.id,
            exit_signal_id=intent.exit_signal_id,
            trade_id=intent.trade_id,
            user_broker_id=intent.user_broker_id,
            exit_reason=intent.exit_reason,
            episode_id=intent.episode_id,
            status=status.value,
            reason_codes=[code.value for code in decision.reason_codes],
            quantity=plan.quantity,
            order_type=plan.order_type.value,
            limit_price=plan.limit_price,
            slices=list(plan.slices),
        )
        event_type = (
            EXIT_INTENT_APPROVED if status is ExitIntentStatus.APPROVED else EXIT_INTENT_REJECTED
        )
        event = exit_event(event_type, "exit_intent", intent.id, intent.trade_id, payload)
        emit(conn, [*also, event], self.clock)

    def _facts(
        self, context: TradeContext, signal: ExitSignalRecord, now: datetime, history: ExitHistory
    ) -> ExitFacts:
        return ExitFacts(
            reason=signal.exit_reason,
            price=signal.price,
            at=now,
            trade_status=context.status,
            direction=context.direction,
            open_quantity=context.quantity - history.exited_quantity,
            target_price=context.target_price,
            tick_size=context.tick_size,
            lot_size=context.lot_size,
            freeze_quantity=context.freeze_quantity,
            broker_enabled=context.broker_enabled,
            broker_connected=self._broker_connected(context),
            live_exit=history.live is not None,
            session=self.calendar.session(self.calendar.trading_date(now)),
            portfolio_locked=self.holds.is_portfolio_locked(context.user_broker_id),
            trade_frozen=self.holds.is_trade_frozen(context.trade_id),
            filled_exit=history.filled,
        )

    def _broker_connected(self, context: TradeContext) -> bool:
        live = self.connectivity is None or self.connectivity.connected(context.user_broker_id)
        return context.broker_connected and live

    @staticmethod
    def _result(
        intent: ExitIntentRecord, outcome: ExitOutcome, decision: ExitDecision
    ) -> ExitDetectionResult:
        return ExitDetectionResult(
            outcome=outcome,
            trade_id=intent.trade_id,
            reason=intent.exit_reason,
            episode_id=intent.episode_id,
            exit_signal_id=intent.exit_signal_id,
            exit_intent_id=intent.id,
            reason_codes=tuple(code.value for code in decision.reason_codes),
        )


def _load_signal(conn: Connection, signal_id: int) -> ExitSignalRecord:
    row = conn.execute(select(ExitSignal.__table__).where(ExitSignal.id == signal_id)).one()
    return ExitSignalRecord.from_row(row)


def _load_intent(conn: Connection, intent_id: int) -> ExitIntentRecord:
    row = conn.execute(select(ExitIntent.__table__).where(ExitIntent.id == intent_id)).one()
    return ExitIntentRecord.from_row(row)


def _plan_columns(plan: ExitOrderPlan) -> dict[str, Any]:
    """The exit_intents columns of an order plan: written with the row, rewritten when decided."""
    return {
        "side": plan.side,
        "quantity": plan.quantity,
        "order_type": plan.order_type,
        "limit_price": plan.limit_price,
        "slices": list(plan.slices),
    }


def _waiting_signal(conn: Connection, trade_id: int) -> tuple[int, int] | None:
    """(id, episode) of the trade's signal still DETECTED: one waiting for the TARGET it
    pre-empted (or left by a crash, which ``replay`` finishes)."""
    row = conn.execute(
        select(ExitSignal.id, ExitSignal.episode_id)
        .where(ExitSignal.trade_id == trade_id, ExitSignal.status == ExitSignalStatus.DETECTED)
        .order_by(ExitSignal.id)
        .limit(1)
    ).first()
    return None if row is None else (row.id, row.episode_id)
