"""Guarded state transitions: ``UPDATE ... WHERE id = :id AND status IN (:expected)``."""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, select, update

from signal_mgmt.errors import IllegalTransitionError


def transition(
    connection: Connection,
    entity: Any,
    row_id: int,
    *,
    expected: Collection[StrEnum],
    target: StrEnum,
    values: dict[str, Any] | None = None,
) -> None:
    """Move one row from one of ``expected`` to ``target`` or raise, changing nothing.

    The status test is part of the UPDATE itself, so two writers racing on one
    row cannot both move it: the loser matches no row and gets
    ``IllegalTransitionError`` with the status it actually found.
    """
    moved = connection.execute(
        update(entity)
        .where(entity.id == row_id, entity.status.in_([state.value for state in expected]))
        .values(status=target.value, **(values or {}))
    ).rowcount
    if moved == 1:
        return
    actual = connection.execute(select(entity.status).where(entity.id == row_id)).scalar()
    raise IllegalTransitionError(
        entity.__tablename__,
        row_id,
        expected="|".join(state.value for state in expected),
        target=target.value,
        actual=actual,
    )
