"""Statements per call: what one library call sends to the database.

Counted with a SQLAlchemy ``before_cursor_execute`` listener on every engine of
the process, so a multi-row INSERT is one statement and an ``executemany`` one
per call; BEGIN and COMMIT are not cursor statements and are not counted (the
raw baselines pay them too). Counted outside the timed loops.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event


@contextmanager
def counting() -> Iterator[list[str]]:
    """Collect the text of every statement any engine executes inside the block."""
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", note)


def per_call(call: Callable[[], object]) -> int:
    """The number of statements one ``call()`` executes."""
    with counting() as seen:
        call()
    return len(seen)
