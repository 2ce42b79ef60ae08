"""Test harness: every storage test runs on SQLite AND PostgreSQL.

PostgreSQL: one template database per test session, migrated once; each test
gets ``CREATE DATABASE ... TEMPLATE`` (fast) and drops it afterwards. An
unreachable PostgreSQL fails the run; it never skips.
SQLite: one migrated template file per session, copied per test.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url

from signal_mgmt.market.clock import ManualClock
from signal_mgmt.storage.db import make_engine
from signal_mgmt.storage.migrations import upgrade

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "dev", max_examples=60, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

PG_ADMIN_URL = os.environ.get(
    "SIGNAL_MGMT_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgresql"]


def _admin_engine() -> Engine:
    url = make_url(PG_ADMIN_URL)
    if url.drivername in {"postgresql", "postgres"}:
        url = url.set(drivername="postgresql+psycopg")
    return create_engine(url, isolation_level="AUTOCOMMIT", pool_size=1)


class PostgresDatabases:
    """Creates and drops the databases of one test session."""

    def __init__(self) -> None:
        self.admin = _admin_engine()
        self.prefix = f"sm_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.created: list[str] = []
        self.template = self.create(template=None, migrate=True)

    def url_for(self, name: str) -> URL:
        return self.admin.url.set(database=name)

    def create(self, template: str | None, migrate: bool = False) -> str:
        name = f"{self.prefix}_{len(self.created)}"
        clause = f" TEMPLATE {template}" if template else ""
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        self.created.append(name)
        if migrate:
            engine = make_engine(self.url_for(name).render_as_string(hide_password=False))
            upgrade(engine)
            engine.dispose()
        return name

    def drop(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.created.remove(name)

    def close(self) -> None:
        for name in list(reversed(self.created)):
            self.drop(name)
        self.admin.dispose()


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases()  # connection errors fail the session: no skip
    yield databases
    databases.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    """A URL to a fresh, migrated database of the test's backend."""
    backend: str = request.param
    if backend == "sqlite":
        path = tmp_path / "test.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    dbs: PostgresDatabases = request.getfixturevalue("pg_databases")
    name = dbs.create(template=dbs.template)
    yield dbs.url_for(name).render_as_string(hide_password=False)
    dbs.drop(name)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 25, 4, 0, tzinfo=UTC))  # 09:30 Asia/Kolkata


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize every test that (indirectly) needs ``database_url`` over both backends."""
    if "database_url" in metafunc.fixturenames:
        backends = BACKENDS
        if metafunc.definition.get_closest_marker("postgres_only"):
            backends = ["postgresql"]
        metafunc.parametrize("database_url", backends, indirect=True)
