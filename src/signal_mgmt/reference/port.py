"""The ReferenceData port: where the entry path learns instruments, audiences and accounts.

The default, :class:`~signal_mgmt.reference.tables.TableReferenceData`, reads the
library's own tables. A host with its own account or subscription store passes
another implementation to ``SignalService`` and ``EntryQualificationService``.
Every call gets the caller's connection, so reads can share the writing
transaction; an implementation backed by something else may ignore it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import Connection

from signal_mgmt.reference.types import Account, InstrumentInfo, Position


class ReferenceData(Protocol):
    def instrument(self, connection: Connection, symbol: str) -> InstrumentInfo | None:
        """The instrument, or None when the symbol is unknown."""
        ...

    def audience(self, connection: Connection, symbol: str, confluence_type: str) -> list[int]:
        """The user-broker ids subscribed to signals of this symbol and confluence type."""
        ...

    def account(self, connection: Connection, user_broker_id: int) -> Account | None: ...

    def positions(self, connection: Connection, user_broker_id: int) -> Sequence[Position]:
        """Open positions of the user-broker, including entries approved but not yet filled."""
        ...
