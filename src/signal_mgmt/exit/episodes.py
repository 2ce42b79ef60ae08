"""Episodes: when a held exit condition may fire again, decided by the database.

``exit_episodes`` holds, per (trade, reason), the current episode number and
whether the condition has re-armed. A new episode starts with ONE guarded
upsert (``ON CONFLICT DO UPDATE ... WHERE armed OR cooldown_until <= now``): of
two processes that race, PostgreSQL evaluates the WHERE on the row the winner
wrote, so the loser updates nothing; SQLite serializes writers. Nothing lives in memory, so the
rule survives restarts and second instances.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from signal_mgmt.models import ExitEpisode


def start_episode(
    conn: Connection, trade_id: int, reason: str, now: datetime, cooldown: timedelta
) -> int | None:
    """The number of a newly started episode, or None while the last one holds.

    One statement: INSERT episode 1, or on conflict move to the next episode only
    ``WHERE armed OR cooldown_until <= now`` (evaluated on the row as it stands
    after any concurrent writer), returning nothing when the guard refuses.
    """
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(ExitEpisode).values(
        trade_id=trade_id,
        exit_reason=reason,
        episode_id=1,
        armed=False,
        fired_at=now,
        cooldown_until=now + cooldown,
        cleared_at=None,
    )
    statement = statement.on_conflict_do_update(
        index_elements=[ExitEpisode.trade_id, ExitEpisode.exit_reason],
        set_={
            "episode_id": ExitEpisode.episode_id + 1,
            "armed": False,
            "fired_at": now,
            "cooldown_until": now + cooldown,
        },
        where=or_(ExitEpisode.armed.is_(True), ExitEpisode.cooldown_until <= now),
    )
    episode = conn.execute(statement.returning(ExitEpisode.episode_id)).scalar_one_or_none()
    return None if episode is None else int(episode)


def rearm(conn: Connection, trade_id: int, reason: str, cleared_at: datetime) -> bool:
    """The condition cleared: let the next detection start a new episode.

    A clear observed before the current episode fired is stale and changes nothing.
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
    return moved == 1


def current_episode(conn: Connection, trade_id: int, reason: str) -> int | None:
    value = conn.execute(
        select(ExitEpisode.episode_id).where(
            ExitEpisode.trade_id == trade_id, ExitEpisode.exit_reason == reason
        )
    ).scalar_one_or_none()
    return None if value is None else int(value)
