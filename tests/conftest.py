"""Test harness: every storage test runs on SQLite AND PostgreSQL through ``backend``.

``backend`` is parametrized over both databases for every test that uses it, directly or
through ``database_url`` / ``engine``; ``@pytest.mark.postgres_only`` keeps PostgreSQL only.
PostgreSQL: one template database per test session (per xdist worker), migrated once; each
database is ``CREATE DATABASE ... TEMPLATE`` (fast) and dropped afterwards. An unreachable
server stops the run at start with one line naming it; a test never skips for it.
SQLite: one migrated template file per session, copied per database.
Hypothesis examples share their test's database, emptied per example (``emptied_engine``).
Connection guard: every test database URL carries the worker's ``application_name``; a test
that still has connections to its database when it ends fails, and so does a worker holding
more than ``MAX_WORKER_CONNECTIONS`` (the shared server allows 100 for everyone).
``--no-servers`` runs only what needs no server: the SQLite side, no broker tests.
"""

from __future__ import annotations

import itertools
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url

from services import POSTGRES, first_problem
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import Base
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

BACKENDS = ["sqlite", "postgresql"]
DROP_THREADS = 4
# a worker's test connections at most (two workers and other sessions share max_connections)
MAX_WORKER_CONNECTIONS = 30
CONNECTIONS_CLOSE_WITHIN = 5.0  # seconds for closed connections to leave pg_stat_activity
NO_SERVERS = "--no-servers"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        NO_SERVERS,
        action="store_true",
        help="run only the tests that need no server: SQLite backend, no broker tests",
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop at once, in one line, when a server the suite needs is missing."""
    is_xdist_worker = hasattr(session.config, "workerinput")  # the controller checked
    if is_xdist_worker or session.config.getoption(NO_SERVERS):
        return
    problem = first_problem()
    if problem:
        raise pytest.UsageError(problem)


def _admin_engine() -> Engine:
    url = make_url(POSTGRES.url)
    if url.drivername in {"postgresql", "postgres"}:
        url = url.set(drivername="postgresql+psycopg")
    return create_engine(url, isolation_level="AUTOCOMMIT", pool_size=DROP_THREADS + 1)


class PostgresDatabases:
    """Creates and drops the databases of one test session (one xdist worker)."""

    def __init__(self) -> None:
        self.admin = _admin_engine()
        # the pid keeps parallel workers and parallel runs apart on the shared server
        self.prefix = f"sm_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.created: list[str] = []
        self._numbers = itertools.count()
        self.template = self.create(template=None, migrate=True)
        # DROP DATABASE forces a checkpoint (seconds on a busy server): a test does not wait
        # for its database to go, and drops in flight together share one checkpoint.
        self._dropper = ThreadPoolExecutor(DROP_THREADS, thread_name_prefix="drop-database")
        self._drops: list[Future[None]] = []

    def url_for(self, name: str) -> URL:
        """The database's URL, tagged with this worker's ``application_name`` for the guard."""
        return self.admin.url.set(database=name, query={"application_name": self.prefix})

    def check_connections(self, database: str | None = None) -> None:
        """Fail loudly if ``database`` still has test connections (a pool or thread outlived
        its test), or if this worker holds more connections than its share."""
        deadline = time.monotonic() + CONNECTIONS_CLOSE_WITHIN
        while True:
            held = self._connections(database)
            limit = 0 if database else MAX_WORKER_CONNECTIONS
            if len(held) <= limit or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if len(held) > limit:
            where = f"database {database}" if database else f"this worker ({self.prefix})"
            raise AssertionError(
                f"connection leak: {len(held)} connections open to {where} (at most {limit}): "
                f"{held[:10]}; dispose every engine and stop every thread a test starts"
            )

    def _connections(self, database: str | None) -> list[tuple[str, str]]:
        query = (
            "SELECT datname, coalesce(state, '') FROM pg_stat_activity "
            "WHERE application_name = :app AND (CAST(:db AS text) IS NULL OR datname = :db)"
        )
        with self.admin.connect() as conn:
            rows = conn.execute(text(query), {"app": self.prefix, "db": database})
            return [(row[0], row[1]) for row in rows]

    def create(self, template: str | None, migrate: bool = False) -> str:
        name = f"{self.prefix}_{next(self._numbers)}"
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
        self.created.remove(name)
        self._drop(name)

    def drop_soon(self, name: str) -> None:
        """Drop in the background; ``close`` waits for it and re-raises its error."""
        self.created.remove(name)
        self._drops.append(self._dropper.submit(self._drop, name))

    def _drop(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        self._dropper.shutdown()
        for drop in self._drops:
            drop.result()
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


class Backend:
    """The database a storage test runs on; hands out fresh, migrated databases of it."""

    def __init__(self, request: pytest.FixtureRequest, name: str, folder: Path) -> None:
        self.name = name
        self._request = request
        self._folder = folder
        self._postgres: PostgresDatabases | None = None

    @property
    def is_postgres(self) -> bool:
        return self.name == "postgresql"

    def create_database(self) -> str:
        """A URL to a new database at the migrations' head."""
        if not self.is_postgres:
            path = self._folder / f"{uuid.uuid4().hex}.db"
            shutil.copyfile(self._request.getfixturevalue("sqlite_template"), path)
            return f"sqlite:///{path}"
        if self._postgres is None:  # the session's template is made on first use only
            self._postgres = self._request.getfixturevalue("pg_databases")
        self._postgres.check_connections()
        name = self._postgres.create(template=self._postgres.template)
        return self._postgres.url_for(name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        database = make_url(url).database
        assert database is not None
        if self._postgres is not None:
            try:
                self._postgres.check_connections(database)
            finally:
                self._postgres.drop_soon(database)
        else:
            Path(database).unlink()

    @contextmanager
    def fresh_engine(self) -> Iterator[Engine]:
        """An engine on a new database, disposed and dropped afterwards (one per example)."""
        url = self.create_database()
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()
            self.drop_database(url)


@pytest.fixture
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """SQLite or PostgreSQL: every test that uses it runs once on each."""
    return Backend(request, request.param, tmp_path)


@pytest.fixture
def database_url(backend: Backend) -> Iterator[str]:
    """A URL to a fresh, migrated database of the test's backend."""
    url = backend.create_database()
    yield url
    backend.drop_database(url)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def empty_every_table(engine: Engine) -> None:
    """Back to a just-migrated database, ids included (much cheaper than a new database).

    DELETE, not TRUNCATE: on PostgreSQL a TRUNCATE of every table made new files for each
    (0.56 s per example under load, DELETE and sequence reset 0.08 s).
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # a transaction left open by an earlier example fails the test instead of hanging it
            conn.execute(text("SET LOCAL lock_timeout = '20s'"))
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT setval(seqrelid, seqstart, false) FROM pg_sequence"))
        # SQLite: no AUTOINCREMENT, so ids restart from the emptied table by themselves


@pytest.fixture
def emptied_engine(engine: Engine) -> Callable[[], Engine]:
    """The test's engine, its database emptied anew on each call (once per Hypothesis example).

    One database and one pool per test: a database per example cost a checkpoint per DROP,
    and engines kept until the test's end held one pool of connections per example.
    """

    def emptied() -> Engine:
        empty_every_table(engine)
        return engine

    return emptied


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 25, 4, 0, tzinfo=UTC))  # 09:30 Asia/Kolkata


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize every test that (indirectly) uses ``backend`` over both databases."""
    if "backend" in metafunc.fixturenames:
        backends = BACKENDS
        if metafunc.definition.get_closest_marker("postgres_only"):
            backends = ["postgresql"]
        metafunc.parametrize("backend", backends, indirect=True)


def _needs_a_server(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    on_postgres = callspec is not None and callspec.params.get("backend") == "postgresql"
    uses_postgres = "pg_databases" in getattr(item, "fixturenames", ())
    return on_postgres or uses_postgres or item.get_closest_marker("brokers") is not None


# The longest tests (10-110 s each, measured with --durations), longest first: started first,
# xdist's load scheduling deals them out to the workers before the many short ones.
LONG_TESTS = (
    "test_position_lifecycle.py::",
    "test_exit_properties.py::",
    "test_entry_properties.py::",
    "test_outbox_processes.py::test_three_relay_processes",
    "test_demo.py::",
    "test_publisher_relay.py::test_a_relay_thread_rides_through_a_broker_outage",
    "test_entry_concurrency.py::test_processes_racing",
    "test_outbox_pg_restart.py::",
    "test_wheel.py::",
    "test_exit_concurrency.py::test_eight_processes",
    "test_bad_inputs.py::test_demo_fresh",
    "test_cli_outbox.py::test_relay_command_drains",
    "test_outbox_stateful.py::",
)


def _start_order(item: pytest.Item) -> tuple[int, bool]:
    rank = next((i for i, long in enumerate(LONG_TESTS) if long in item.nodeid), len(LONG_TESTS))
    return rank, "[sqlite" in item.nodeid  # the PostgreSQL run of a test is the longer


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_start_order)  # stable: the rest keep their order
    if not config.getoption(NO_SERVERS):
        return
    deselected = [item for item in items if _needs_a_server(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not _needs_a_server(item)]
