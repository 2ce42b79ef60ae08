"""`signal-mgmt migrate`: its own version table next to a host's Alembic history, an 0.1
database adopted, current / downgrade / --sql, --version, and one-line errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from conftest import Backend, PostgresDatabases
from signal_mgmt import __version__
from signal_mgmt.cli import app
from signal_mgmt.models import Base
from signal_mgmt.storage.db import make_engine
from signal_mgmt.storage.migrations import LEGACY_VERSION_TABLE, VERSION_TABLE, upgrade
from test_migrations import schema_drift

runner = CliRunner()
HEAD_OF_0_1 = "0004_exit"  # the newest revision 0.1 shipped, recorded in alembic_version
HEAD = "0007_exit_intent_guard"


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def empty_url(backend: Backend, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to a database of the test's backend with no table at all."""
    if not backend.is_postgres:
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    dbs: PostgresDatabases = request.getfixturevalue("pg_databases")
    name = dbs.create(template=None)
    yield dbs.url_for(name).render_as_string(hide_password=False)
    dbs.drop_soon(name)


@pytest.fixture
def empty_engine(empty_url: str) -> Iterator[Engine]:
    engine = make_engine(empty_url)
    yield engine
    engine.dispose()


def versions(engine: Engine, table: str) -> list[str]:
    if not inspect(engine).has_table(table):
        return []
    with engine.connect() as conn:
        return list(conn.execute(text(f"SELECT version_num FROM {table}")).scalars())


def host_alembic(engine: Engine, revision: str) -> None:
    """What a host's own `alembic upgrade` leaves: its table and its revision."""
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE host_accounts (id INTEGER PRIMARY KEY)"))
        conn.execute(
            text(f"CREATE TABLE {LEGACY_VERSION_TABLE} (version_num VARCHAR(32) PRIMARY KEY)")
        )
        conn.execute(text(f"INSERT INTO {LEGACY_VERSION_TABLE} VALUES (:r)"), {"r": revision})


def test_migrate_next_to_a_host_alembic_history(empty_url: str, empty_engine: Engine) -> None:
    host_alembic(empty_engine, "a1b2c3d4e5f6")
    code, _, err = run("migrate", "--database-url", empty_url)
    assert (code, err) == (0, f"schema is up to date ({HEAD})\n")
    assert versions(empty_engine, LEGACY_VERSION_TABLE) == ["a1b2c3d4e5f6"]
    assert versions(empty_engine, VERSION_TABLE) == [HEAD]
    assert set(Base.metadata.tables) | {"host_accounts"} <= set(
        inspect(empty_engine).get_table_names()
    )
    assert run("migrate", "current", "--database-url", empty_url)[1] == f"{HEAD}\n"


@pytest.mark.parametrize("with_host_revision", [False, True])
def test_a_database_migrated_by_0_1_is_adopted(
    empty_url: str, empty_engine: Engine, with_host_revision: bool
) -> None:
    """0.1 kept its revision in alembic_version: the row moves to our table, the rest stays."""
    upgrade(empty_engine, HEAD_OF_0_1)
    with empty_engine.begin() as conn:  # rewind to what 0.1 left behind
        conn.execute(text(f"DROP TABLE {VERSION_TABLE}"))
    host_alembic(empty_engine, HEAD_OF_0_1)
    if with_host_revision:
        with empty_engine.begin() as conn:
            conn.execute(text(f"INSERT INTO {LEGACY_VERSION_TABLE} VALUES ('f00dcafe')"))

    assert run("migrate", "--database-url", empty_url)[0] == 0

    assert versions(empty_engine, VERSION_TABLE) == [HEAD]
    legacy_left = ["f00dcafe"] if with_host_revision else []
    assert versions(empty_engine, LEGACY_VERSION_TABLE) == legacy_left
    assert inspect(empty_engine).has_table(LEGACY_VERSION_TABLE) is with_host_revision


def test_current_and_downgrade(empty_url: str, empty_engine: Engine) -> None:
    empty_engine.connect().close()  # the SQLite file exists, with no table
    code, out, err = run("migrate", "current", "--database-url", empty_url)
    assert (code, out) == (0, "")
    assert "run `signal-mgmt migrate`" in err
    assert run("migrate", "--database-url", empty_url)[0] == 0
    code, _, err = run("migrate", "downgrade", "0003_entry", "--database-url", empty_url)
    assert (code, err) == (0, "schema is at 0003_entry\n")
    assert not inspect(empty_engine).has_table("exit_intents")
    assert run("migrate", "current", "--database-url", empty_url)[1] == "0003_entry\n"
    assert run("migrate", "downgrade", "base", "--database-url", empty_url)[0] == 0
    assert set(inspect(empty_engine).get_table_names()) <= {VERSION_TABLE}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("migrate", "downgrade", "nope"), 2, "Can't locate revision identified by 'nope'"),
        (("migrate", "--sql"), 2, "the upgrade DDL is for PostgreSQL"),
        (("migrate", "--database-url", "postgresql://u@127.0.0.1:1/x"), 1, "connection failed"),
        (("migrate", "--database-url", "mysql://u@h/x"), 2, "unsupported database"),
    ],
)
def test_errors_are_one_line(
    args: tuple[str, ...], code: int, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run("migrate")[0] == 0  # ./signal_mgmt.db, for the commands that need one
    got, out, err = run(*args)
    assert (got, out) == (code, "")
    assert err.startswith("error: ")
    assert message in err
    assert err.count("\n") == 1, err  # one line, no traceback


def test_sql_prints_the_upgrade_ddl_in_the_schema() -> None:
    code, out, _ = run("migrate", "--sql", "--database-url", "postgresql://dba@db.invalid/prod")
    assert code == 0
    assert "CREATE TABLE outbox" in out
    assert "CREATE TRIGGER outbox_notify" in out
    assert f"INSERT INTO {VERSION_TABLE} (version_num) VALUES ('0001_outbox')" in out
    runner_env = {"SIGNAL_MGMT_SCHEMA": "trading_lib"}
    result = runner.invoke(
        app, ["migrate", "--sql", "--database-url", "postgresql://h/db"], env=runner_env
    )
    assert result.exit_code == 0
    head = result.stdout.split("CREATE TABLE", 1)[0]
    assert "CREATE SCHEMA IF NOT EXISTS trading_lib;" in head
    assert "SET search_path TO trading_lib;" in head


@pytest.mark.postgres_only
def test_the_sql_script_builds_the_schema_a_migrate_would(
    empty_url: str, empty_engine: Engine
) -> None:
    """What a DBA runs from `--sql` leaves the database at head, matching the models."""
    code, script, _ = run("migrate", "--sql", "--database-url", empty_url)
    assert code == 0
    url = make_url(empty_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:  # the script has its BEGIN / COMMIT
        conn.execute(script.encode())
    assert run("migrate", "current", "--database-url", empty_url)[1] == f"{HEAD}\n"
    assert schema_drift(empty_engine) == []


def test_version() -> None:
    assert run("--version") == (0, f"signal-mgmt {__version__}\n", "")
