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

from sqlalchemy import Table

from signal_mgmt.errors import ConfigError
from signal_mgmt.models import Base, OutboxRow
from signal_mgmt.storage.db import check_schema_name, is_schema_name

ROLES = ("signal", "tms", "execution", "relay", "reader")

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

# role -> table -> (may INSERT, may DELETE, columns it may UPDATE or ALL)
Rule = tuple[bool, bool, tuple[str, ...]]
WRITES: Mapping[str, Mapping[str, Rule]] = {
    "signal": {
        # FOR UPDATE (the account lock of an entry decision) needs an UPDATE privilege; the id
        # is the one column whose change every referencing row refuses (foreign keys).
        "user_brokers": (False, False, ("id",)),
        "signals": (True, False, ("status", "published_at")),
        "signal_deliveries": (True, False, ("consumed_at",)),
        "trade_intents": (True, False, ()),
        "exit_episodes": (True, False, (ALL,)),
        "exit_signals": (True, False, ("status", "published_at")),
        "exit_intents": (
            True,
            False,
            (*_EXIT_DECISION, "decided_at", "preempted_at", "updated_at"),
        ),
        "exit_trailing_marks": (True, False, (ALL,)),
        "outbox": (True, False, ()),
        "inbox": (True, True, ()),
    },
    "tms": {
        "instruments": (True, False, (ALL,)),
        "user_brokers": (True, False, (ALL,)),
        "subscriptions": (True, True, ()),
        "trade_intents": (False, False, ("status", "updated_at")),
        "trades": (True, False, (ALL,)),
        "orders": (True, False, (ALL,)),
        "outbox": (True, False, ()),
        "inbox": (True, True, ()),
    },
    "execution": {
        "orders": (True, False, (ALL,)),
        "exit_intents": (False, False, _EXIT_EXECUTION),
        "outbox": (True, False, ()),
    },
    "relay": {"outbox": (False, False, RELAY_COLUMNS)},
    "reader": {},
}


TRIGGER_MAINTAINED: Mapping[str, tuple[str, ...]] = {
    "exit_budgets": ("exit_budget_track()", "exit_budget_entry()"),
}
"""Tables no role writes: only these trigger functions do, as their owner (SECURITY DEFINER),
so no grant can let a writer reset the position counter (migration 0006)."""


def library_tables() -> list[Table]:
    return list(Base.metadata.sorted_tables)


def roles_sql(prefix: str = "signal_mgmt", schema: str | None = None) -> str:
    """The SQL that creates the roles (NOLOGIN) and sets their grants; idempotent.

    Run it as the owner of the library's tables after every ``signal-mgmt migrate``, then
    ``GRANT <prefix>_signal TO <a login role>`` per service.
    """
    if not is_schema_name(prefix):
        raise ConfigError(f"bad role prefix {prefix!r}: lowercase letters, digits and _")
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


def _grants(role: str, where: str, tables: Iterable[Table], rules: Mapping[str, Rule]) -> list[str]:
    by_name = {table.name: table for table in tables}
    lines = []
    for name, (insert, delete, columns) in rules.items():
        table = by_name[name]
        target = f"{where}{name}"
        if insert:
            lines.append(f"GRANT INSERT ON TABLE {target} TO {role};")
            serial = table.autoincrement_column
            if serial is not None:
                lines.append(f"GRANT USAGE ON SEQUENCE {where}{name}_{serial.name}_seq TO {role};")
        if delete:
            lines.append(f"GRANT DELETE ON TABLE {target} TO {role};")
        if columns == (ALL,):
            lines.append(f"GRANT UPDATE ON TABLE {target} TO {role};")
        elif columns:
            lines.append(f"GRANT UPDATE ({', '.join(columns)}) ON TABLE {target} TO {role};")
    return lines
