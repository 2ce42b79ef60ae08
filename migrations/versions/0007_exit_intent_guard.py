"""Exit intents follow their state machine in the database

Two roles write ``exit_intents.status`` (the signal side decides, execution
places and reconciles); column grants cannot say which of them may make which
move, so a trigger refuses every move outside the state machine, whoever
writes: PENDING -> APPROVED | REJECTED; APPROVED -> PLACED | FAILED;
PLACED -> FILLED | FAILED; REJECTED, FILLED and FAILED are final. The
quantity is the decision's: it changes only while the intent is PENDING.
check_violation (SQLite: ABORT), so callers see an integrity error.

Revision ID: 0007_exit_intent_guard
Revises: 0006_position_safety
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0007_exit_intent_guard"
down_revision = "0006_position_safety"
branch_labels = None
depends_on = None

MOVES = {
    "PENDING": ("APPROVED", "REJECTED"),
    "APPROVED": ("PLACED", "FAILED"),
    "PLACED": ("FILLED", "FAILED"),
}
"""Every status change an exit intent may make; the other statuses are final."""

_LEGAL_MOVE = " OR ".join(
    f"(OLD.status = '{before}' AND NEW.status IN ({', '.join(repr(a) for a in after)}))"
    for before, after in MOVES.items()
)
_ILLEGAL = (
    f"(NEW.status <> OLD.status AND NOT ({_LEGAL_MOVE}))"
    " OR (NEW.quantity <> OLD.quantity AND OLD.status <> 'PENDING')"
)
REFUSAL = "exit intent: status move outside the state machine, or quantity changed after PENDING"

SQLITE_TRIGGER = f"""CREATE TRIGGER trg_exit_intent_moves BEFORE UPDATE OF status, quantity
ON exit_intents WHEN {_ILLEGAL}
BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"""

POSTGRES_TRIGGERS = (
    f"""CREATE FUNCTION exit_intent_moves() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF {_ILLEGAL} THEN
        RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$""",
    """CREATE TRIGGER trg_exit_intent_moves BEFORE UPDATE OF status, quantity ON exit_intents
FOR EACH ROW EXECUTE FUNCTION exit_intent_moves()""",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_TRIGGERS:
            op.execute(statement)
    else:
        op.execute(SQLITE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER trg_exit_intent_moves ON exit_intents")
        op.execute("DROP FUNCTION exit_intent_moves()")
    else:
        op.execute("DROP TRIGGER trg_exit_intent_moves")
