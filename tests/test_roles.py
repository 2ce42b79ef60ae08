"""Least privilege (PostgreSQL): the services and the relay run under the roles that
`signal-mgmt roles --sql` prints, from a signal to a closed trade, and every single-writer
violation is refused by PostgreSQL itself."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, ProgrammingError
from typer.testing import CliRunner

from entry_world import at, make_world
from loop_support import no_wait
from outbox_support import emit_ticks, event_ids_by_n
from signal_mgmt import InMemoryPublisher, OutboxRelay, SignalService, TradeLoop
from signal_mgmt.cli import app
from signal_mgmt.entry.coordinator import EntryCoordinator
from signal_mgmt.entry.qualification import EntryQualificationService
from signal_mgmt.errors import StorageError
from signal_mgmt.execution.exit_dispatcher import ExitIntentDispatcher
from signal_mgmt.execution.exit_reconciler import Reconciler
from signal_mgmt.execution.simulated import SimulatedBroker
from signal_mgmt.exit.detector import ExitDetector
from signal_mgmt.exit.monitor import ExitMonitor
from signal_mgmt.exit.service import ExitIntentService
from signal_mgmt.exit.settings import ExitSettings
from signal_mgmt.market.calendar import nse_calendar
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import Base, OutboxRow, Trade
from signal_mgmt.outbox import store
from signal_mgmt.storage.db import make_engine
from signal_mgmt.storage.migrations import alembic_config
from signal_mgmt.storage.roles import (
    MAX_PREFIX,
    ROLES,
    TRIGGER_GUARDS,
    TRIGGER_MAINTAINED,
    WRITES,
    roles_sql,
)
from signal_mgmt.tms.close import TradeCloser
from signal_mgmt.tms.open import TradeOpener

pytestmark = pytest.mark.postgres_only
INSUFFICIENT_PRIVILEGE = "42501"


@pytest.fixture
def logins(engine: Engine, database_url: str) -> Iterator[dict[str, Engine]]:
    """One LOGIN role per library role (granted it), and an engine for each."""
    prefix = f"t{uuid.uuid4().hex[:10]}"  # roles are cluster-wide: unique per test
    with engine.begin() as conn:
        conn.exec_driver_sql(roles_sql(prefix))
        for role in ROLES:
            conn.exec_driver_sql(f"CREATE ROLE {prefix}_{role}_login LOGIN IN ROLE {prefix}_{role}")
    url = make_url(database_url)
    engines = {
        role: make_engine(url.set(username=f"{prefix}_{role}_login").render_as_string(False))
        for role in ROLES
    }
    yield engines
    for one in engines.values():
        one.dispose()
    with engine.begin() as conn:
        for role in ROLES:
            for name in (f"{prefix}_{role}_login", f"{prefix}_{role}"):
                conn.exec_driver_sql(f"DROP OWNED BY {name}")
                conn.exec_driver_sql(f"DROP ROLE {name}")


def refused(engine: Engine, statement: str) -> bool:
    """True when PostgreSQL refuses ``statement`` for lack of privilege."""
    try:
        with engine.begin() as conn:
            conn.execute(text(statement))
    except ProgrammingError as error:
        return getattr(error.orig, "sqlstate", None) == INSUFFICIENT_PRIVILEGE
    return False


def test_every_table_has_a_writer() -> None:
    """A new table needs a decision here before it can be granted (and before this passes)."""
    written = {table for rules in WRITES.values() for table in rules}
    assert set(Base.metadata.tables) == written | set(TRIGGER_MAINTAINED)


def test_every_library_trigger_function_is_known(engine: Engine) -> None:
    """A trigger function writing a table no role may write must be made SECURITY DEFINER."""
    with engine.connect() as conn:
        found = set(
            conn.execute(
                text(
                    "SELECT p.oid::regprocedure::text FROM pg_proc p"
                    " JOIN pg_namespace n ON n.oid = p.pronamespace"
                    " WHERE n.nspname = 'public' AND p.prorettype = 'trigger'::regtype"
                )
            ).scalars()
        )
    known = {function for functions in TRIGGER_MAINTAINED.values() for function in functions}
    assert found == known | {"outbox_notify()", *TRIGGER_GUARDS}  # these need no privilege


def test_roles_command_prints_the_grants() -> None:
    result = CliRunner().invoke(app, ["roles", "--sql", "--prefix", "tms_lib"])
    assert result.exit_code == 0, result.stderr
    assert "CREATE ROLE tms_lib_relay NOLOGIN" in result.stdout
    assert "GRANT UPDATE (status, published_at) ON TABLE signals TO tms_lib_signal;" in (
        result.stdout
    )
    bad = CliRunner().invoke(app, ["roles", "--sql", "--prefix", "Bad-Name"])
    assert bad.exit_code == 2


def close_a_trade(logins: dict[str, Engine], clock: ManualClock) -> int:
    """A signal to a closed trade (one FILLED exit of 10), each stage under its own role."""
    clock.set(at(10, 0))
    calendar, settings = nse_calendar(), ExitSettings()
    broker = SimulatedBroker({"INFY": Decimal("100")})
    world = make_world(logins["tms"], clock, users=1, tcs_only=False)  # reference data: TMS
    signal, tms, execution = logins["signal"], logins["tms"], logins["execution"]
    exits = ExitIntentService(signal, clock, calendar, settings=settings)
    loop = TradeLoop(
        opener=TradeOpener(tms, clock, broker, sleep=no_wait),
        monitor=ExitMonitor(ExitDetector(settings.condition(calendar)), exits),
        dispatcher=ExitIntentDispatcher(execution, broker, clock, sleep=no_wait),
        reconciler=Reconciler(execution, broker, clock),
        closer=TradeCloser(tms, clock),
    )
    entry = EntryCoordinator(
        SignalService(signal, clock, calendar),
        EntryQualificationService(signal, clock, calendar),
        loop.opener,
        lanes=1,
    )
    entry.process(world.candidate("INFY"))
    [trade_id] = loop.run_once().watched
    clock.advance(timedelta(seconds=30))
    broker.set_price("INFY", Decimal("98.90"))
    loop.on_tick("INFY", Decimal("98.90"), clock.now())
    assert loop.run_once().closed == (trade_id,)
    return int(trade_id)


@pytest.mark.parametrize("length", [MAX_PREFIX + 1, 60, 63])
def test_a_prefix_that_postgresql_would_cut_is_refused(length: int) -> None:
    """Names past 63 bytes are truncated: <prefix>_relay and <prefix>_reader would merge."""
    result = CliRunner().invoke(app, ["roles", "--sql", "--prefix", "p" * length])
    assert (result.exit_code, result.stderr.count("\n")) == (2, 1), result.stderr
    assert "longer than 53" in result.stderr


def test_the_longest_prefix_makes_distinct_roles(engine: Engine) -> None:
    prefix = f"t{uuid.uuid4().hex}".ljust(MAX_PREFIX, "x")
    with engine.begin() as conn:
        conn.exec_driver_sql(roles_sql(prefix))
        made = conn.execute(
            text("SELECT rolname FROM pg_roles WHERE rolname LIKE :p"), {"p": f"{prefix}%"}
        ).scalars()
        assert sorted(made) == sorted(f"{prefix}_{role}" for role in ROLES)
        for role in ROLES:
            conn.exec_driver_sql(f"DROP OWNED BY {prefix}_{role}")
            conn.exec_driver_sql(f"DROP ROLE {prefix}_{role}")


def test_the_reader_sees_the_schema_version(logins: dict[str, Engine]) -> None:
    url = logins["reader"].url.render_as_string(hide_password=False)
    result = CliRunner().invoke(app, ["migrate", "current", "--database-url", url])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_services_and_relay_run_under_their_roles(
    logins: dict[str, Engine], clock: ManualClock
) -> None:
    close_a_trade(logins, clock)
    publisher = InMemoryPublisher()
    relay = OutboxRelay(logins["relay"], publisher, clock=clock)
    while relay.run_once():
        pass
    with logins["reader"].connect() as conn:
        assert conn.execute(select(Trade.status)).scalars().all() == ["CLOSED"]
        states = conn.execute(select(OutboxRow.status).distinct()).scalars().all()
    assert states == ["PUBLISHED"]
    assert len(publisher.messages) > 5


@pytest.mark.parametrize(
    ("role", "statement"),
    [
        ("signal", "UPDATE trades SET status = 'CLOSED'"),
        ("signal", "INSERT INTO orders (id) VALUES (1)"),
        ("signal", "UPDATE exit_intents SET filled_quantity = 1"),
        ("signal", "UPDATE outbox SET status = 'PUBLISHED'"),
        ("tms", "INSERT INTO exit_intents (id) VALUES (1)"),
        ("tms", "UPDATE exit_intents SET status = 'FILLED'"),
        ("tms", "UPDATE signals SET status = 'PUBLISHED'"),
        ("tms", "INSERT INTO trade_intents (id) VALUES (1)"),
        ("execution", "UPDATE trades SET status = 'CLOSED'"),
        ("execution", "UPDATE exit_intents SET quantity = 0"),
        ("execution", "INSERT INTO exit_signals (id) VALUES (1)"),
        ("relay", "UPDATE outbox SET payload = '{}'"),
        ("relay", "UPDATE outbox SET partition_key = 'x'"),
        ("relay", "INSERT INTO outbox (id) VALUES (1)"),
        ("relay", "DELETE FROM outbox"),
        ("relay", "UPDATE trades SET pnl = 0"),
        ("signal", "UPDATE exit_budgets SET committed_quantity = 0"),
        ("execution", "UPDATE exit_budgets SET committed_quantity = 0"),
        ("tms", "INSERT INTO exit_budgets VALUES (1, 1, 0)"),
        ("reader", "UPDATE outbox SET status = 'PUBLISHED'"),
        ("reader", "INSERT INTO signals (id) VALUES (1)"),
        ("reader", "DELETE FROM inbox"),
    ],
)
def test_a_single_writer_violation_fails_in_postgresql(
    logins: dict[str, Engine], role: str, statement: str
) -> None:
    assert refused(logins[role], statement)


ILLEGAL_EXIT_MOVES = [
    ("signal", "UPDATE exit_intents SET status = 'REJECTED' WHERE status = 'FILLED'"),
    ("signal", "UPDATE exit_intents SET status = 'PENDING' WHERE status = 'FILLED'"),
    ("signal", "UPDATE exit_intents SET quantity = 1 WHERE status = 'FILLED'"),
    ("execution", "UPDATE exit_intents SET status = 'APPROVED' WHERE status = 'FILLED'"),
    ("execution", "UPDATE exit_intents SET status = 'PLACED' WHERE status = 'FILLED'"),
]


@pytest.mark.parametrize(("role", "statement"), ILLEGAL_EXIT_MOVES)
def test_an_exit_intent_moves_only_by_its_state_machine(
    logins: dict[str, Engine], clock: ManualClock, role: str, statement: str
) -> None:
    """Two roles hold UPDATE (status): neither may rewrite a FILLED exit (and free its
    budget for a second sale); the database refuses the move, not the grant."""
    trade_id = close_a_trade(logins, clock)
    with pytest.raises(IntegrityError, match="state machine"), logins[role].begin() as conn:
        conn.execute(text(statement))
    with logins["reader"].connect() as conn:
        held = conn.execute(
            text("SELECT committed_quantity FROM exit_budgets WHERE trade_id = :t"),
            {"t": trade_id},
        ).scalar_one()
        statuses = conn.execute(text("SELECT status FROM exit_intents")).scalars().all()
    assert (held, statuses) == (10, ["FILLED"])


def test_the_refusal_reaches_a_library_call_as_a_storage_error(
    logins: dict[str, Engine], clock: ManualClock
) -> None:
    """The signal side handed a TMS-only service: its first write is refused by the database."""
    world = make_world(logins["tms"], clock, users=1, tcs_only=False)
    with pytest.raises(StorageError) as caught:
        SignalService(logins["tms"], clock, nse_calendar()).publish(world.candidate("INFY"))
    assert caught.value.sqlstate == INSUFFICIENT_PRIVILEGE


def test_a_write_the_role_holds_is_allowed(logins: dict[str, Engine], clock: ManualClock) -> None:
    """Guard against a refusal check that cannot fail: the same kind of statement, granted;
    and the operator's outbox commands (docs: they run as the relay role)."""
    assert not refused(logins["relay"], "UPDATE outbox SET status = 'PUBLISHED' WHERE false")
    assert not refused(logins["tms"], "UPDATE trades SET status = 'CLOSED' WHERE false")
    emit_ticks(logins["tms"], clock, [1])
    assert OutboxRelay(logins["relay"], InMemoryPublisher(), clock=clock).run_once() == 1
    assert store.retry_dead(logins["relay"], clock) == 0
    assert (
        store.replay(logins["relay"], clock, list(event_ids_by_n(logins["reader"]).values())) == 1
    )
