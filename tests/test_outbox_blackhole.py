"""A PostgreSQL server lost from the network: nothing refused, nothing answered.

The TCP proxy's ``freeze`` is that black hole for the relay's side (its kernel
still acknowledges, so the server itself cannot tell; the server-side settings
that end a lost host's session are checked as set, see docs/outbox.md).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from broker_support import TcpProxy
from outbox_support import emit_ticks, statuses
from signal_mgmt.errors import TransientStorageError, translate_db_errors
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.outbox.claim import SERVER_WATCH
from signal_mgmt.outbox.events import OutboxMessage
from signal_mgmt.outbox.publishers import InMemoryPublisher
from signal_mgmt.outbox.relay import OutboxRelay
from signal_mgmt.outbox.thread import RelayThread
from signal_mgmt.storage.db import make_engine

pytestmark = pytest.mark.postgres_only

SIGNAL_MGMT = str(Path(sys.executable).parent / "signal-mgmt")
PATIENCE = 60.0
"""Turns a call that hangs into a test failure; never reached when calls have deadlines."""


def returns_within_patience(call: object) -> list[BaseException | None]:
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()  # type: ignore[operator]
            outcome.append(None)
        except BaseException as error:  # handed to the test thread
            outcome.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(PATIENCE)
    assert not worker.is_alive(), "the call hung"
    return outcome


@pytest.fixture
def silent_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_connecting_to_a_silent_server_fails_instead_of_hanging(silent_port: int) -> None:
    """libpq has no connect timeout by default: a claim or health() waited forever."""
    engine = make_engine(f"postgresql://postgres@127.0.0.1:{silent_port}/test")
    try:

        def connect() -> None:
            with translate_db_errors():
                engine.connect().close()

        outcome = returns_within_patience(connect)
        assert isinstance(outcome[0], TransientStorageError), outcome
    finally:
        engine.dispose()


def test_a_claim_session_asks_the_server_to_end_it_when_its_host_is_lost(
    engine: Engine, clock: ManualClock
) -> None:
    seen: dict[str, str] = {}

    class Inspecting(InMemoryPublisher):
        def publish(self, messages: Sequence[OutboxMessage]) -> None:
            assert relay.claim is not None
            assert relay.claim._session is not None
            for name in [*SERVER_WATCH, "client_connection_check_interval"]:
                value = relay.claim._session.execute(text(f"SHOW {name}")).scalar_one()
                seen[name] = value
            super().publish(messages)

    relay = OutboxRelay(engine, Inspecting(), clock=clock)
    emit_ticks(engine, clock, [1])
    assert relay.run_once() == 1
    assert seen == {
        "tcp_keepalives_idle": "5",
        "tcp_keepalives_interval": "2",
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": "10000",
        "client_connection_check_interval": "2s",
    }


def test_stop_returns_while_the_thread_waits_on_a_black_holed_server(
    engine: Engine, database_url: str, clock: ManualClock
) -> None:
    """The relay's mark waited on the lost server, and stop() blocked with it."""
    url = make_url(database_url)
    proxy = TcpProxy(url.port or 5432)
    proxied = make_engine(url.set(port=proxy.port).render_as_string(hide_password=False))

    class CutOffAfterPublishing(InMemoryPublisher):
        def publish(self, messages: Sequence[OutboxMessage]) -> None:
            super().publish(messages)
            proxy.freeze()  # the mark that follows goes into the black hole

    publisher = CutOffAfterPublishing()
    relay = OutboxRelay(proxied, publisher, clock=clock)
    thread = RelayThread(relay, poll_interval=0.05, listen=False)
    try:
        emit_ticks(engine, clock, [1])
        thread.start()
        while not publisher.messages and thread.running:  # until the black hole opened
            relay.stopping.wait(0.01)
        assert returns_within_patience(lambda: thread.stop(timeout=0.5)) == [None]
    finally:
        proxy.close()
        proxied.dispose()


def test_the_cli_relay_honours_sigterm_while_the_server_is_black_holed(
    engine: Engine, database_url: str, clock: ManualClock, tmp_path: Path
) -> None:
    """The relay loop ran in the main thread: a signal waited for the database call.
    The connection's own timeouts are switched off here, so only the CLI's stop can end it."""
    url = make_url(database_url)
    proxy = TcpProxy(url.port or 5432)
    forever = url.set(port=proxy.port).update_query_dict(
        {"keepalives": "0", "tcp_user_timeout": "0", "connect_timeout": "0"}
    )
    log = tmp_path / "relay.log"
    command = [
        SIGNAL_MGMT, "relay", "--database-url", forever.render_as_string(hide_password=False),
        "--publisher", f"jsonl:{tmp_path / 'out.jsonl'}", "--poll-interval", "0.05",
    ]  # fmt: skip
    try:
        with log.open("wb") as stderr:
            process = subprocess.Popen(command, stderr=stderr)
        try:
            emit_ticks(engine, clock, [1])
            deadline = time.monotonic() + PATIENCE  # turns a hang into a failure
            while set(statuses(engine).values()) != {"PUBLISHED"}:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.02)
            proxy.freeze()
            emit_ticks(engine, clock, [2])
            time.sleep(1)  # polling every 0.05 s, the relay is now waiting on the black hole
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=PATIENCE) == 0, log.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    finally:
        proxy.close()
