"""Least-privilege PostgreSQL roles: spec §7's single writer, enforced by the database.

Each role is one room of the code, and may write only what that room writes:

- ``signal``: ENTRY and EXIT decisions (entry/, exit/): signals, deliveries, trade intents,
  episodes, exit signals, exit intents up to their decision; emits events.
- ``tms``: the host's side (tms/, reference/): reference data, trades (open, close, P&L),
  entry orders, a trade intent's execution status; emits events.
- ``execution``: exit dispatcher and reconciler (execution/): exit orders and an exit intent's
  execution columns (PLACED / FILLED / FAILED); never a trade.
- ``relay``: reads the outbox and updates its delivery columns, never an event's content.
- ``reader``: operators and dashboards: SELECT only.

Every role but the relay reads every library table (the rules read across rooms). Grants are
generated from the models' tables: a table with no rule here fails ``tests/test_roles.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import Table

from signal_mgmt.errors import ConfigError
from signal_mgmt.models import Base, OutboxRow
from signal_mgmt.storage.db import MAX_IDENTIFIER, check_schema_name, is_schema_name
from signal_mgmt.storage.migrations import VERSION_TABLE

ROLES = ("signal", "tms", "execution", "relay", "reader")
MAX_PREFIX = MAX_IDENTIFIER - 1 - max(len(role) for role in ROLES)
"""The longest ``--prefix`` whose ``<prefix>_<role>`` names all fit PostgreSQL's identifiers."""

ALL = "*"
"""Every column of the table."""

OUTBOX_EVENT_COLUMNS = frozenset(
    {"id", "event_id", "event_type", "aggregate_type", "aggregate_id", "partition_key"}
    | {"payload", "headers", "created_at"}
)
"""What an event says; the relay may update every other outbox column (its delivery state)."""
RELAY_COLUMNS = tuple(
    column.name for column in OutboxRow.__table__.columns if column.name not in OUTBOX_EVENT_COLUMNS
)

_EXIT_DECISION = (
    "status",
    "reason_codes",
    "side",
    "quantity",
    "order_type",
    "limit_price",
    "slices",
)
_EXIT_EXECUTION = (
    "status",
    "filled_quantity",
    "average_fill_price",
    "failure_reason",
    "claimed_until",
    "placed_at",
    "finished_at",
    "updated_at",
)


@dataclass(frozen=True)
class Writes:
    """What one role may write in one table: rows in or out, and the columns it may UPDATE."""

    insert: bool = False
    delete: bool = False
    update: tuple[str, ...] = ()  # column names, or (ALL,)


WRITES: Mapping[str, Mapping[str, Writes]] = {
    "signal": {
        # FOR UPDATE (the account lock of an entry decision) needs an UPDATE privilege; the id
        # is the one column whose change every referencing row refuses (foreign keys).
        "user_brokers": Writes(update=("id",)),
        "signals": Writes(insert=True, update=("status", "published_at")),
        "signal_deliveries": Writes(insert=True, update=("consumed_at",)),
        "trade_intents": Writes(insert=True),
        "exit_episodes": Writes(insert=True, update=(ALL,)),
        "exit_signals": Writes(insert=True, update=("status", "published_at")),
        "exit_intents": Writes(
            insert=True, update=(*_EXIT_DECISION, "decided_at", "preempted_at", "updated_at")
        ),
        "exit_trailing_marks": Writes(insert=True, update=(ALL,)),
        "outbox": Writes(insert=True),
        "inbox": Writes(insert=True, delete=True),
    },
    "tms": {
        "instruments": Writes(insert=True, update=(ALL,)),
        "user_brokers": Writes(insert=True, update=(ALL,)),
        "subscriptions": Writes(insert=True, delete=True),
        "trade_intents": Writes(update=("status", "updated_at")),
        "trades": Writes(insert=True, update=(ALL,)),
        "orders": Writes(insert=True, update=(ALL,)),
        "outbox": Writes(insert=True),
        "inbox": Writes(insert=True, delete=True),
    },
    "execution": {
        "orders": Writes(insert=True, update=(ALL,)),
        "exit_intents": Writes(update=_EXIT_EXECUTION),
        "outbox": Writes(insert=True),
    },
    "relay": {"outbox": Writes(update=RELAY_COLUMNS)},
    "reader": {},
}


TRIGGER_MAINTAINED: Mapping[str, tuple[str, ...]] = {
    "exit_budgets": ("exit_budget_track()",),
}
"""Tables no role writes: only these trigger functions do, as their owner (SECURITY DEFINER),
so no grant can let a writer reset the position counter (migration 0006)."""

TRIGGER_GUARDS = ("exit_budget_entry()", "exit_budget_guard()", "exit_intent_moves()")
"""Trigger functions that only read and refuse (migrations 0006, 0007): they need no privilege."""


def library_tables() -> list[Table]:
    return list(Base.metadata.sorted_tables)


def roles_sql(prefix: str = "signal_mgmt", schema: str | None = None) -> str:
    """The SQL that creates the roles (NOLOGIN) and sets their grants; idempotent.

    Run it as the owner of the library's tables after every ``signal-mgmt migrate``, then
    ``GRANT <prefix>_signal TO <a login role>`` per service.
    """
    if not is_schema_name(prefix):
        raise ConfigError(f"bad role prefix {prefix!r}: lowercase letters, digits and _")
    if len(prefix) > MAX_PREFIX:
        # PostgreSQL cuts a longer name to 63 bytes: two roles would silently become one.
        raise ConfigError(f"role prefix {prefix!r} longer than {MAX_PREFIX} characters")
    where = f"{check_schema_name(schema)}." if schema is not None else ""
    names = {role: f"{prefix}_{role}" for role in ROLES}
    everyone = ", ".join(names.values())
    tables = library_tables()
    all_tables = ", ".join(f"{where}{table.name}" for table in tables)
    readers = ", ".join(name for role, name in names.items() if role != "relay")
    lines = [f"-- signal_mgmt roles{f' in schema {schema}' if schema else ''}: {everyone}"]
    lines += [_create_role(name) for name in names.values()]
    lines += [
        f"GRANT USAGE ON SCHEMA {schema or 'public'} TO {everyone};",
        f"REVOKE ALL ON TABLE {all_tables} FROM {everyone};",
        f"GRANT SELECT ON TABLE {all_tables} TO {readers};",
        f"GRANT SELECT ON TABLE {where}{OutboxRow.__tablename__} TO {names['relay']};",
        f"GRANT SELECT ON TABLE {where}{VERSION_TABLE} TO {names['reader']};",  # migrate current
    ]
    for role, rules in WRITES.items():
        lines.append(f"-- {role}")
        lines += _grants(names[role], where, tables, rules)
    lines.append("-- trigger functions write as the tables' owner")
    for functions in TRIGGER_MAINTAINED.values():
        lines += [
            f"ALTER FUNCTION {where}{function} SECURITY DEFINER "
            f"SET search_path = {schema or 'public'}, pg_temp;"
            for function in functions
        ]
    return "\n".join(lines) + "\n"


def _create_role(name: str) -> str:
    return (
        f"DO $$ BEGIN CREATE ROLE {name} NOLOGIN; "
        "EXCEPTION WHEN duplicate_object THEN NULL; END $$;"
    )


def _grants(
    role: str, where: str, tables: Iterable[Table], rules: Mapping[str, Writes]
) -> list[str]:
    by_name = {table.name: table for table in tables}
    lines = []
    for name, writes in rules.items():
        table = by_name[name]
        target = f"{where}{name}"
        if writes.insert:
            lines.append(f"GRANT INSERT ON TABLE {target} TO {role};")
            serial = table.autoincrement_column
            if serial is not None:
                lines.append(f"GRANT USAGE ON SEQUENCE {where}{name}_{serial.name}_seq TO {role};")
        if writes.delete:
            lines.append(f"GRANT DELETE ON TABLE {target} TO {role};")
        if writes.update == (ALL,):
            lines.append(f"GRANT UPDATE ON TABLE {target} TO {role};")
        elif writes.update:
            columns = ", ".join(writes.update)
            lines.append(f"GRANT UPDATE ({columns}) ON TABLE {target} TO {role};")
    return lines
