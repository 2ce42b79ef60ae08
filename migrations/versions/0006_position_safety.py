"""Position safety: exits never exceed the filled entry

``exit_budgets`` holds, per trade, the entry quantity and the quantity its exit
intents commit (live or FILLED: their quantity; FAILED: what they filled).
Row triggers on ``exit_intents`` move the counter in the same statement as the
intent's insert or status change, and a CHECK refuses a counter above the
entry, so no writer (library, host, a hand-typed UPDATE) can exit a trade
twice. On PostgreSQL the counter row's lock serializes concurrent writers of
one trade; SQLite has one writer. The counter cannot be reset around the CHECK:
the budget row refuses writes other than the triggers' (and its DELETE while the
trade has exits), a FILLED exit intent stays FILLED, and a trade's quantity is
fixed once it has an exit. ``exit_intents.preempted_at`` marks a resting TARGET
that a protective exit is cancelling.

Revision ID: 0006_position_safety
Revises: 0005_relay_v2
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import signal_mgmt.models

revision = "0006_position_safety"
down_revision = "0005_relay_v2"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def commitment(row: str) -> str:
    """SQL: the quantity that exit intent ``row`` (NEW / OLD / a table alias) holds."""
    return (
        f"(CASE WHEN {row}.status IN ('PENDING', 'APPROVED', 'PLACED', 'FILLED')"
        f" THEN {row}.quantity WHEN {row}.status = 'FAILED' THEN {row}.filled_quantity"
        " ELSE 0 END)"
    )


def _open_budget(row: str, *, postgres: bool) -> str:
    """SQL: the trade's budget row, created from ``trades.quantity`` on its first exit.

    PostgreSQL: ON CONFLICT, so two first exits of one trade in concurrent
    transactions meet on the row (the second waits, then finds it) instead of
    failing on the primary key. SQLite has one writer: NOT EXISTS is enough.
    """
    insert = (
        "INSERT INTO exit_budgets (trade_id, entry_quantity, committed_quantity)"
        f" SELECT id, quantity, 0 FROM trades WHERE id = {row}.trade_id"
    )
    if postgres:
        return f"{insert} ON CONFLICT (trade_id) DO NOTHING;"
    return f"{insert} AND NOT EXISTS (SELECT 1 FROM exit_budgets WHERE trade_id = {row}.trade_id);"


def _move(row: str, sign: str) -> str:
    return (
        f"UPDATE exit_budgets SET committed_quantity = committed_quantity {sign} "
        f"{commitment(row)} WHERE trade_id = {row}.trade_id;"
    )


_WATCHED = "status, quantity, filled_quantity, trade_id"

_HELD = (
    f"(SELECT COALESCE(SUM({commitment('e')}), 0) FROM exit_intents e"
    " WHERE e.trade_id = NEW.trade_id)"
)
"""SQL: what the trade's exit intents hold now (inside a trigger on ``exit_budgets``)."""

_FILLED_CHANGED = (
    "OLD.status = 'FILLED' AND (NEW.status <> 'FILLED' OR NEW.quantity <> OLD.quantity"
    " OR NEW.filled_quantity <> OLD.filled_quantity OR NEW.trade_id <> OLD.trade_id)"
)
"""SQL: an update that would un-fill a FILLED exit (it was sold: its quantity stays held)."""

_BUDGETED = "EXISTS (SELECT 1 FROM exit_budgets b WHERE b.trade_id = NEW.id)"
_EXITS_LEFT = "EXISTS (SELECT 1 FROM exit_intents e WHERE e.trade_id = OLD.trade_id)"

REFUSALS = {
    "budget": "exit_budgets is written only by the exit_intents triggers",
    "filled": "a FILLED exit intent stays FILLED with its quantity",
    "entry": "trades.quantity is fixed once the trade has an exit",
}

# SQLite has no trigger depth: the guards on exit_budgets check the row instead. A budget
# is opened at zero for the trade's quantity, its entry never changes, and its counter never
# drops below what the trade's exit intents hold (the update trigger moves it in one
# statement, so no intermediate value is seen). A trade's budget goes only with its exits.
SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER trg_exit_budget_insert AFTER INSERT ON exit_intents
BEGIN {_open_budget("NEW", postgres=False)} {_move("NEW", "+")} END""",
    f"""CREATE TRIGGER trg_exit_budget_update AFTER UPDATE OF {_WATCHED} ON exit_intents
BEGIN {_open_budget("NEW", postgres=False)}
UPDATE exit_budgets SET committed_quantity = committed_quantity + {commitment("NEW")}
 - (CASE WHEN OLD.trade_id = NEW.trade_id THEN {commitment("OLD")} ELSE 0 END)
 WHERE trade_id = NEW.trade_id;
UPDATE exit_budgets SET committed_quantity = committed_quantity - {commitment("OLD")}
 WHERE trade_id = OLD.trade_id AND OLD.trade_id <> NEW.trade_id; END""",
    f"""CREATE TRIGGER trg_exit_intent_filled BEFORE UPDATE OF {_WATCHED} ON exit_intents
WHEN {_FILLED_CHANGED}
BEGIN SELECT RAISE(ABORT, '{REFUSALS["filled"]}'); END""",
    f"""CREATE TRIGGER trg_exit_budget_entry BEFORE UPDATE OF quantity ON trades
WHEN NEW.quantity <> OLD.quantity AND {_BUDGETED}
BEGIN SELECT RAISE(ABORT, '{REFUSALS["entry"]}'); END""",
    f"""CREATE TRIGGER trg_exit_budget_guard_insert BEFORE INSERT ON exit_budgets
WHEN NEW.committed_quantity <> 0
 OR NEW.entry_quantity IS NOT (SELECT quantity FROM trades WHERE id = NEW.trade_id)
BEGIN SELECT RAISE(ABORT, '{REFUSALS["budget"]}'); END""",
    f"""CREATE TRIGGER trg_exit_budget_guard_update BEFORE UPDATE ON exit_budgets
WHEN NEW.trade_id <> OLD.trade_id OR NEW.entry_quantity <> OLD.entry_quantity
 OR NEW.committed_quantity < {_HELD}
BEGIN SELECT RAISE(ABORT, '{REFUSALS["budget"]}'); END""",
    f"""CREATE TRIGGER trg_exit_budget_guard_delete BEFORE DELETE ON exit_budgets
WHEN {_EXITS_LEFT}
BEGIN SELECT RAISE(ABORT, '{REFUSALS["budget"]}'); END""",
)

# PostgreSQL: the budget's guard lets through only writes made by a trigger (depth > 1),
# i.e. by exit_budget_track; check_violation, so callers see an integrity error.
POSTGRES_TRIGGERS = (
    f"""CREATE FUNCTION exit_budget_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF {_FILLED_CHANGED} THEN
            RAISE EXCEPTION '{REFUSALS["filled"]}' USING ERRCODE = 'check_violation';
        END IF;
        {_move("OLD", "-")}
    END IF;
    {_open_budget("NEW", postgres=True)}
    {_move("NEW", "+")}
    RETURN NULL;
END $$""",
    f"""CREATE TRIGGER trg_exit_budget AFTER INSERT OR UPDATE OF {_WATCHED} ON exit_intents
FOR EACH ROW EXECUTE FUNCTION exit_budget_track()""",
    f"""CREATE FUNCTION exit_budget_entry() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.quantity <> OLD.quantity AND {_BUDGETED} THEN
        RAISE EXCEPTION '{REFUSALS["entry"]}' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$""",
    """CREATE TRIGGER trg_exit_budget_entry BEFORE UPDATE OF quantity ON trades
FOR EACH ROW EXECUTE FUNCTION exit_budget_entry()""",
    f"""CREATE FUNCTION exit_budget_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF {_EXITS_LEFT} THEN
            RAISE EXCEPTION '{REFUSALS["budget"]}' USING ERRCODE = 'check_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION '{REFUSALS["budget"]}' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$""",
    """CREATE TRIGGER trg_exit_budget_guard BEFORE INSERT OR UPDATE OR DELETE ON exit_budgets
FOR EACH ROW EXECUTE FUNCTION exit_budget_guard()""",
)


def upgrade() -> None:
    op.create_table(
        "exit_budgets",
        sa.Column("trade_id", BIGINT, nullable=False),
        sa.Column("entry_quantity", sa.Integer(), nullable=False),
        sa.Column("committed_quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "committed_quantity <= entry_quantity", name=op.f("ck_exit_budgets_within_entry")
        ),
        sa.CheckConstraint(
            "committed_quantity >= 0", name=op.f("ck_exit_budgets_committed_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["trade_id"], ["trades.id"], name=op.f("fk_exit_budgets_trade_id_trades")
        ),
        sa.PrimaryKeyConstraint("trade_id", name=op.f("pk_exit_budgets")),
    )
    op.add_column(
        "exit_intents",
        sa.Column("preempted_at", signal_mgmt.models.UTCDateTime(), nullable=True),
    )
    # Existing exits: a database that already holds a double exit fails here, on the CHECK.
    op.execute(
        "INSERT INTO exit_budgets (trade_id, entry_quantity, committed_quantity)"
        f" SELECT t.id, t.quantity, SUM({commitment('e')})"
        " FROM trades t JOIN exit_intents e ON e.trade_id = t.id GROUP BY t.id, t.quantity"
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES_TRIGGERS if postgres else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER trg_exit_budget_guard ON exit_budgets")
        op.execute("DROP TRIGGER trg_exit_budget_entry ON trades")
        op.execute("DROP TRIGGER trg_exit_budget ON exit_intents")
        op.execute("DROP FUNCTION exit_budget_guard()")
        op.execute("DROP FUNCTION exit_budget_entry()")
        op.execute("DROP FUNCTION exit_budget_track()")
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {statement.split()[2]}")
    op.execute("ALTER TABLE exit_intents DROP COLUMN preempted_at")
    op.drop_table("exit_budgets")
