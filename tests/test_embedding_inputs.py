"""Constructor and clock inputs a host may pass: typed errors, never a later crash."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from signal_mgmt import (
    InMemoryPublisher,
    InstrumentSpec,
    ManualClock,
    OutboxRelay,
    ReferenceAdmin,
    RelayThread,
    make_engine,
)
from signal_mgmt.cli import app
from signal_mgmt.errors import ConfigError, InvalidInputError
from signal_mgmt.models import Instrument
from signal_mgmt.outbox.publishers import publisher_from_spec

START = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    yield engine
    engine.dispose()


@pytest.mark.parametrize("interval", [math.inf, 1e300, math.nan, 0, -1, True, "1"])
def test_a_relay_thread_refuses_an_unusable_poll_interval(
    sqlite_engine: Engine, interval: object
) -> None:
    relay = OutboxRelay(sqlite_engine, InMemoryPublisher())
    with pytest.raises(InvalidInputError, match="poll_interval"):
        RelayThread(relay, poll_interval=interval)  # type: ignore[arg-type]


@pytest.mark.parametrize("lease", [-1, math.nan, timedelta(0), timedelta(days=10**6), None])
def test_a_relay_refuses_an_unusable_lease(sqlite_engine: Engine, lease: object) -> None:
    with pytest.raises(InvalidInputError, match="lease"):
        OutboxRelay(sqlite_engine, InMemoryPublisher(), lease=lease)  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", [None, 7, "jsonl:/tmp/a\x00b", "nats://h\x00:4222"])
def test_a_publisher_spec_is_checked_up_front(spec: object) -> None:
    with pytest.raises(ConfigError):
        publisher_from_spec(spec)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "delta", [timedelta(days=200_000), timedelta.max, -timedelta(days=10**6), "x", 60]
)
def test_a_manual_clock_never_moves_out_of_range(delta: object) -> None:
    clock = ManualClock(START)
    with pytest.raises(InvalidInputError):
        clock.advance(delta)  # type: ignore[arg-type]
    assert clock.now() == START


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["migrate", "--database-url", "postgresql+psycopg2://u:pw@127.0.0.1/db"], {}, "driver"),
        (["relay"], {"SIGNAL_MGMT_PUBLISHER": "nats://user:pw@[::1"}, "bad publisher URL"),
        (["relay"], {"SIGNAL_MGMT_PUBLISHER": "amqp://h:99999/"}, "bad publisher URL"),
    ],
)
def test_a_bad_url_is_one_line_not_a_traceback(
    args: list[str], env: dict[str, str], message: str, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'x.db'}"
    CliRunner().invoke(app, ["migrate", "--database-url", database])
    result = CliRunner().invoke(app, args, env={"SIGNAL_MGMT_DATABASE_URL": database, **env})
    assert (result.exit_code, result.stderr.count("\n")) == (2, 1), result.stderr
    assert message in result.stderr
    assert "pw@" not in result.stderr


class HostClock:
    """A host's clock that misbehaves: naive, or far outside the storable range."""

    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now


@pytest.mark.parametrize(
    "bad_now",
    [datetime(2026, 11, 25, 4, 0), datetime(2574, 1, 1, tzinfo=UTC)],  # noqa: DTZ001
)
def test_a_host_clock_out_of_range_or_naive_is_refused(engine: Engine, bad_now: datetime) -> None:
    admin = ReferenceAdmin(engine, HostClock(bad_now))
    with pytest.raises(InvalidInputError, match="stored time"):
        admin.add_instruments([InstrumentSpec(symbol="INFY", tick_size=Decimal("0.05"))])
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Instrument)).scalar_one() == 0
