"""SIGNAL_MGMT_SCHEMA (PostgreSQL): every library object lives in that schema, next to a host
whose own tables share the library's generic names; services, relay and CLI all use it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from conftest import PostgresDatabases
from outbox_support import emit_ticks
from signal_mgmt import (
    EntryQualificationService,
    InMemoryPublisher,
    InstrumentSpec,
    ManualClock,
    OutboxRelay,
    ReferenceAdmin,
    SignalCandidate,
    SignalService,
    UserBrokerSpec,
    make_engine,
    nse_calendar,
    upgrade,
)
from signal_mgmt.cli import app
from signal_mgmt.errors import ConfigError
from signal_mgmt.models import Base
from signal_mgmt.storage.migrations import VERSION_TABLE, downgrade
from signal_mgmt.storage.roles import ROLES, roles_sql

SCHEMA = "trading_lib"
pytestmark = pytest.mark.postgres_only

OBJECTS_IN = text(
    """
    SELECT 'relation ' || c.relname FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :schema
    UNION ALL
    SELECT 'function ' || p.proname FROM pg_proc p
      JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = :schema
    UNION ALL
    SELECT 'trigger ' || t.tgname FROM pg_trigger t
      JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = :schema AND NOT t.tgisinternal
    """
)


def objects_in(engine: Engine, schema: str) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(OBJECTS_IN, {"schema": schema}).scalars())


@pytest.fixture
def database(pg_databases: PostgresDatabases) -> Iterator[str]:
    """An empty database whose public schema holds a host's tables named like ours."""
    name = pg_databases.create(template=None)
    url = pg_databases.url_for(name).render_as_string(hide_password=False)
    host = make_engine(url)
    with host.begin() as conn:
        conn.execute(text("CREATE TABLE orders (id int PRIMARY KEY, host_note text)"))
        conn.execute(text("CREATE TABLE trades (id int PRIMARY KEY)"))
    host.dispose()
    yield url
    pg_databases.drop_soon(name)


def test_services_relay_and_cli_use_the_schema_and_leave_public_alone(database: str) -> None:
    public = make_engine(database)
    host_objects = objects_in(public, "public")
    engine = make_engine(database, schema=SCHEMA)
    clock = ManualClock(datetime(2026, 11, 25, 4, 0, tzinfo=UTC))
    calendar = nse_calendar()

    upgrade(engine)
    admin = ReferenceAdmin(engine, clock)
    admin.add_instruments([InstrumentSpec(symbol="INFY", tick_size=Decimal("0.05"))])
    trader = admin.add_user_broker(
        UserBrokerSpec(
            user_id="u1",
            broker="SIM",
            available_capital=Decimal(500_000),
            sizing_mode="FIXED_QUANTITY",
            fixed_quantity=10,
        )
    )
    admin.subscribe(trader, symbol="INFY")
    SignalService(engine, clock, calendar).publish(
        SignalCandidate(
            symbol="INFY",
            direction="LONG",
            confluence_type="ORB",
            detected_at=clock.now(),
            effective_floor=1500,
            effective_ceiling=1512.4,
        )
    )
    intents = EntryQualificationService(engine, clock, calendar).qualify_pending()
    assert [i.status.value for i in intents] == ["APPROVED"]
    publisher = InMemoryPublisher()
    relay = OutboxRelay(engine, publisher, clock=clock)
    while relay.run_once():
        pass
    published = len(publisher.messages)
    assert published > 0

    status = CliRunner().invoke(
        app,
        ["outbox", "status", "--json", "--database-url", database],
        env={"SIGNAL_MGMT_SCHEMA": SCHEMA},
    )
    assert status.exit_code == 0, status.stderr
    assert json.loads(status.stdout)["published"] == published
    elsewhere = CliRunner().invoke(app, ["outbox", "status", "--database-url", database])
    assert elsewhere.exit_code == 1  # without the setting: public has no outbox
    assert 'relation "outbox" does not exist' in elsewhere.stderr

    assert objects_in(public, "public") == host_objects  # nothing of ours in public
    ours = objects_in(public, SCHEMA)
    assert {f"relation {table}" for table in [*Base.metadata.tables, VERSION_TABLE]} <= ours
    assert {"function outbox_notify", "trigger outbox_notify", "relation ix_outbox_pending"} <= ours
    with public.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM public.orders")).scalar() == 0

    downgrade(engine, "base")
    assert objects_in(public, SCHEMA) == {
        f"relation {VERSION_TABLE}",
        f"relation {VERSION_TABLE}_pkc",
    }
    assert objects_in(public, "public") == host_objects
    engine.dispose()
    public.dispose()


def test_roles_in_the_schema(database: str) -> None:
    """`roles --sql` with the schema set: the relay's login drains the outbox there."""
    owner = make_engine(database, schema=SCHEMA)
    upgrade(owner)
    prefix = f"s{uuid.uuid4().hex[:10]}"
    with owner.begin() as conn:
        conn.exec_driver_sql(roles_sql(prefix, SCHEMA))
        conn.exec_driver_sql(f"CREATE ROLE {prefix}_login LOGIN IN ROLE {prefix}_relay")
    clock = ManualClock(datetime(2026, 11, 25, 4, 0, tzinfo=UTC))
    emit_ticks(owner, clock, [1])
    login = make_url(database).set(username=f"{prefix}_login").render_as_string(False)
    relay_engine = make_engine(login, schema=SCHEMA)
    try:
        assert OutboxRelay(relay_engine, InMemoryPublisher(), clock=clock).run_once() == 1
    finally:
        relay_engine.dispose()
        with owner.begin() as conn:
            for name in (f"{prefix}_login", *(f"{prefix}_{role}" for role in ROLES)):
                conn.exec_driver_sql(f"DROP OWNED BY {name}")
                conn.exec_driver_sql(f"DROP ROLE {name}")
        owner.dispose()


def test_a_migrator_without_create_on_the_database_uses_the_schema_a_dba_made(
    database: str,
) -> None:
    migrator = f"m{uuid.uuid4().hex[:10]}"
    dba = make_engine(database)
    with dba.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {migrator} LOGIN")
        conn.exec_driver_sql(f"CREATE SCHEMA {SCHEMA} AUTHORIZATION {migrator}")
        conn.exec_driver_sql(f"REVOKE CREATE ON DATABASE {make_url(database).database} FROM PUBLIC")
    engine = make_engine(
        make_url(database).set(username=migrator).render_as_string(False), schema=SCHEMA
    )
    try:
        upgrade(engine)
        assert f"relation {VERSION_TABLE}" in objects_in(dba, SCHEMA)
    finally:
        engine.dispose()
        with dba.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {SCHEMA} CASCADE")
            conn.exec_driver_sql(f"DROP OWNED BY {migrator}")
            conn.exec_driver_sql(f"DROP ROLE {migrator}")
        dba.dispose()


@pytest.mark.parametrize(
    ("url", "schema", "message"),
    [
        ("sqlite:///x.db", "lib", "needs PostgreSQL"),
        ("postgresql://h/db", "Lib", "bad schema name"),
        ("postgresql://h/db", "pg_lib", "bad schema name"),
        ("postgresql://h/db", "lib; DROP TABLE x", "bad schema name"),
    ],
)
def test_bad_schema_is_a_config_error(url: str, schema: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_engine(url, schema=schema)


def test_the_demo_runs_in_the_schema(database: str, tmp_path: Path) -> None:
    """Every engine the demo builds (not only its migration) is pinned to the schema."""
    public = make_engine(database)
    host_objects = objects_in(public, "public")
    events = tmp_path / "events.jsonl"
    small = ["--no-progress", "--symbols", "1", "--users", "1", "--events", str(events)]
    run = CliRunner().invoke(
        app, ["demo", *small, "--database-url", database], env={"SIGNAL_MGMT_SCHEMA": SCHEMA}
    )
    assert run.exit_code == 0, run.stderr
    with public.connect() as conn:
        assert conn.execute(text(f"SELECT count(*) FROM {SCHEMA}.signals")).scalar()
        assert conn.execute(text(f"SELECT count(*) FROM {SCHEMA}.outbox")).scalar()
    assert objects_in(public, "public") == host_objects
    public.dispose()


@pytest.mark.parametrize("schema", ["select", "user", "information_schema", 123])
def test_a_reserved_or_catalog_schema_name_is_refused(schema: object) -> None:
    with pytest.raises(ConfigError, match="bad schema name"):
        make_engine("postgresql://h/db", schema=schema)  # type: ignore[arg-type]
    bad = CliRunner().invoke(
        app,
        ["migrate", "--database-url", "postgresql://h/db"],
        env={"SIGNAL_MGMT_SCHEMA": str(schema)},
    )
    assert (bad.exit_code, bad.stderr.count("\n")) == (2, 1), bad.stderr
