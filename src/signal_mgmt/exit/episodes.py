"""Episodes: when a held exit condition may fire again, decided by the database.

``exit_episodes`` holds, per (trade, reason), the current episode number and
whether the condition has re-armed. A new episode starts with ONE guarded
upsert (``ON CONFLICT DO UPDATE ... WHERE fresh AND (armed OR cooldown_until <= at)``):
of two processes that race, PostgreSQL evaluates the WHERE on the row the winner
wrote, so the loser updates nothing; SQLite serializes writers. Nothing lives in
memory, so the rule survives restarts and second instances.

One clock: every time here is the input's own (the candidate's ``detected_at``,
the clear's ``cleared_at``), never the service's clock, so a re-delivered or
delayed input is judged by when it was observed. Input older than the state it
would change is stale and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, Connection, bindparam, select, text, update

from signal_mgmt.models import ExitEpisode, ExitReason, UTCDateTime


@dataclass(frozen=True, slots=True)
class EpisodeState:
    episode_id: int
    armed: bool
    fired_at: datetime
    cleared_at: datetime | None

    def is_stale(self, at: datetime) -> bool:
        """An observation made before the last firing, or before the clear that re-armed."""
        return at < self.fired_at or (self.cleared_at is not None and at < self.cleared_at)


class ClearOutcome(StrEnum):
    REARMED = "REARMED"
    STALE = "STALE"  # not newer than the episode's firing: refused
    UNCHANGED = "UNCHANGED"  # no episode yet, or already re-armed


_START_EPISODE = text(
    f"INSERT INTO {ExitEpisode.__tablename__}"
    " (trade_id, exit_reason, episode_id, armed, fired_at, cooldown_until, cleared_at)"
    " VALUES (:trade_id, :reason, 1, :unarmed, :at, :until, NULL)"
    " ON CONFLICT (trade_id, exit_reason) DO UPDATE SET"
    f" episode_id = {ExitEpisode.__tablename__}.episode_id + 1,"
    " armed = :unarmed, fired_at = :at, cooldown_until = :until"
    f" WHERE {ExitEpisode.__tablename__}.fired_at <= :at"
    f" AND ({ExitEpisode.__tablename__}.cleared_at IS NULL"
    f" OR {ExitEpisode.__tablename__}.cleared_at <= :at)"
    f" AND ({ExitEpisode.__tablename__}.armed OR {ExitEpisode.__tablename__}.cooldown_until <= :at)"
    " RETURNING episode_id"
).bindparams(
    bindparam("trade_id", type_=BigInteger()),
    bindparam("reason", type_=ExitEpisode.__table__.c.exit_reason.type),
    bindparam("unarmed", type_=Boolean()),
    bindparam("at", type_=UTCDateTime()),
    bindparam("until", type_=UTCDateTime()),
)
"""Text, the same on both databases (SQLite >= 3.35 has ON CONFLICT ... RETURNING):
SQLAlchemy compiles a dialect ``on_conflict_do_update`` anew on every call."""


def start_episode(
    conn: Connection, trade_id: int, reason: ExitReason, at: datetime, cooldown: timedelta
) -> int | None:
    """The number of a newly started episode, or None (held, or ``at`` is stale).

    One statement: INSERT episode 1, or on conflict move to the next episode only
    if ``at`` is not older than the row's firing or clear, and the condition
    re-armed or its cooldown ended by ``at`` (evaluated on the row as it stands
    after any concurrent writer), returning nothing when the guard refuses.
    """
    params = {
        "trade_id": trade_id,
        "reason": reason,
        "unarmed": False,
        "at": at,
        "until": at + cooldown,
    }
    episode = conn.execute(_START_EPISODE, params).scalar_one_or_none()
    return None if episode is None else int(episode)


def rearm(
    conn: Connection, trade_id: int, reason: ExitReason, cleared_at: datetime
) -> ClearOutcome:
    """The condition cleared at ``cleared_at``: let the next detection start a new episode.

    A clear not newer than the current episode's firing is stale and changes nothing.
    """
    moved = conn.execute(
        update(ExitEpisode)
        .where(
            ExitEpisode.trade_id == trade_id,
            ExitEpisode.exit_reason == reason,
            ExitEpisode.armed.is_(False),
            ExitEpisode.fired_at < cleared_at,
        )
        .values(armed=True, cleared_at=cleared_at)
    ).rowcount
    if moved == 1:
        return ClearOutcome.REARMED
    state = episode_state(conn, trade_id, reason)
    if state is not None and cleared_at <= state.fired_at:
        return ClearOutcome.STALE
    return ClearOutcome.UNCHANGED


def episode_state(conn: Connection, trade_id: int, reason: ExitReason) -> EpisodeState | None:
    row = conn.execute(
        select(
            ExitEpisode.episode_id,
            ExitEpisode.armed,
            ExitEpisode.fired_at,
            ExitEpisode.cleared_at,
        ).where(ExitEpisode.trade_id == trade_id, ExitEpisode.exit_reason == reason)
    ).first()
    if row is None:
        return None
    return EpisodeState(int(row.episode_id), bool(row.armed), row.fired_at, row.cleared_at)
