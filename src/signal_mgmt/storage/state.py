"""Guarded state transitions: ``UPDATE ... WHERE id = :id AND status IN (:expected)``."""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum
from typing import Any, ClassVar, Protocol, TypeVar

from sqlalchemy import Connection, FromClause, select, update

from signal_mgmt.errors import IllegalTransitionError

S = TypeVar("S", bound=StrEnum)
S_co = TypeVar("S_co", bound=StrEnum, covariant=True)


class StatusRow(Protocol[S_co]):
    """A mapped row with an integer ``id`` and a ``status`` of one vocabulary (``Trade``, ...)."""

    __tablename__: str
    __table__: ClassVar[FromClause]

    @property
    def id(self) -> int: ...

    @property
    def status(self) -> S_co: ...


def transition(
    connection: Connection,
    entity: type[StatusRow[S]],
    row_id: int,
    *,
    expected: Collection[S],
    target: S,
    values: dict[str, Any] | None = None,
) -> None:
    """Move one row from one of ``expected`` to ``target`` or raise, changing nothing.

    The status test is part of the UPDATE itself, so two writers racing on one
    row cannot both move it: the loser matches no row and gets
    ``IllegalTransitionError`` with the status it actually found.
    """
    columns = entity.__table__.c
    moved = connection.execute(
        update(entity)
        .where(columns.id == row_id, columns.status.in_(expected))
        .values(status=target, **(values or {}))
    ).rowcount
    if moved == 1:
        return
    actual = connection.execute(select(columns.status).where(columns.id == row_id)).scalar()
    raise IllegalTransitionError(
        entity.__tablename__,
        row_id,
        expected="|".join(expected),
        target=target,
        actual=actual,
    )
