"""Broker credentials never appear in logs, metrics or error messages, and never need argv."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from outbox_support import emit_ticks
from signal_mgmt.cli import app
from signal_mgmt.errors import ConfigError
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import OutboxRow
from signal_mgmt.outbox.publishers import publisher_from_spec
from signal_mgmt.redaction import redact_url
from signal_mgmt.settings import load_settings
from signal_mgmt.storage.db import make_engine
from signal_mgmt.storage.migrations import upgrade

SECRET = "S3cr3t-pw"
SIGNAL_MGMT = str(Path(sys.executable).parent / "signal-mgmt")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"amqp://guest:{SECRET}@127.0.0.1:5672/%2F?exchange=x", "amqp://guest:***@127.0.0.1"),
        (f"nats://u:{SECRET}@h1:4222,u:{SECRET}@h2:4222", "nats://u:***@h2:4222"),
        (f"redis://:{SECRET}@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        (f"nats://{SECRET}@127.0.0.1", "nats://***@127.0.0.1"),  # a token
        (f"amqp://u:{SECRET}@x/a@b@h/", "amqp://u:***@h/"),  # '@' and '/' in a password
        (f"redis://127.0.0.1:6379/0?password={SECRET}", "redis://127.0.0.1:6379/0?password=***"),
        (f"rediss://h/0?socket_timeout=2&token={SECRET}#x", "rediss://h/0?socket_timeout=2&"),
        (f"amqp//guest:{SECRET}@127.0.0.1:5672/", "amqp..."),  # malformed: the scheme only
        (f"nats:/user:{SECRET}@127.0.0.1:4222", "nats..."),
    ],
)
def test_redact_url_hides_every_credential(url: str, shown: str) -> None:
    assert SECRET not in redact_url(url)
    assert redact_url(url).startswith(shown)


@pytest.mark.parametrize("plain", ["log", "jsonl:/tmp/a.jsonl", "redis://127.0.0.1:6379/0"])
def test_redact_url_keeps_what_has_no_credentials(plain: str) -> None:
    assert redact_url(plain) == plain


@pytest.mark.parametrize(
    "spec",
    [
        f"kafka://u:{SECRET}@broker:9092",
        f"nats://u:{SECRET}@h?nosuch=1",
        f"amqp://u:{SECRET}@h/?exchange=x&exchange=y",
    ],
)
def test_spec_errors_do_not_echo_the_password(spec: str) -> None:
    with pytest.raises(ConfigError) as caught:
        publisher_from_spec(spec)
    assert SECRET not in str(caught.value)
    assert ":***@" in str(caught.value)


@pytest.mark.parametrize(
    ("spec", "setting"),
    [
        (f"amqp//guest:{SECRET}@127.0.0.1:5672/", "SIGNAL_MGMT_PUBLISHER"),
        (f"nats:/user:{SECRET}@127.0.0.1:4222", "SIGNAL_MGMT_PUBLISHER"),
        (f"postgresql//postgres:{SECRET}@127.0.0.1/db", "SIGNAL_MGMT_DATABASE_URL"),
    ],
)
def test_a_malformed_secret_setting_is_not_echoed(spec: str, setting: str, tmp_path: Path) -> None:
    env = {"SIGNAL_MGMT_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", setting: spec}
    result = CliRunner().invoke(app, ["relay"], env=env)
    assert result.exit_code == 2, result.stderr
    assert SECRET not in result.stderr
    with pytest.raises(ConfigError) as caught:
        make_engine(spec)
    assert SECRET not in str(caught.value)


def test_a_query_password_on_the_command_line_is_refused(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:6379/0?password={SECRET}"
    result = CliRunner().invoke(
        app, ["relay", "--publisher", url, "--database-url", f"sqlite:///{tmp_path / 'n.db'}"]
    )
    assert result.exit_code == 2
    assert SECRET not in result.stderr


def test_settings_never_show_the_publisher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNAL_MGMT_PUBLISHER", f"amqp://u:{SECRET}@h/")
    settings = load_settings()
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings.model_dump())
    assert settings.relay_publisher is not None
    assert settings.relay_publisher.get_secret_value() == f"amqp://u:{SECRET}@h/"


def test_a_password_on_the_command_line_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["relay", "--publisher", f"amqp://guest:{SECRET}@127.0.0.1/", "--database-url",
              f"sqlite:///{tmp_path / 'none.db'}"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert SECRET not in result.stderr
    assert "$SIGNAL_MGMT_PUBLISHER or --publisher-file" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--publisher", "log", "--publisher-file", "x"], "not both"),
        (["--publisher-file", "/no/such/file"], "cannot read --publisher-file /no/such/file"),
    ],
)
def test_publisher_file_errors(args: list[str], message: str, tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'none.db'}"
    result = CliRunner().invoke(app, ["relay", "--database-url", database_url, *args])
    assert result.exit_code == 2
    assert message in result.stderr


@pytest.mark.parametrize(
    ("scheme", "source"),
    [("amqp", "env"), ("nats", "file"), ("redis", "env")],
)
def test_relay_keeps_broker_credentials_out_of_logs_errors_and_metrics(
    scheme: str, source: str, tmp_path: Path
) -> None:
    """A broker that refuses connections: the relay logs its retries, serves metrics, and
    records the error on the events it releases at SIGTERM - none shows the password.

    SQLite only: what is printed does not depend on the database.
    """
    database_url = f"sqlite:///{tmp_path / 'relay.db'}"
    engine = make_engine(database_url)
    upgrade(engine)
    port = free_port()  # nothing listens there: every publish fails
    url = {
        "amqp": f"amqp://guest:{SECRET}@127.0.0.1:{port}/%2F",
        "nats": f"nats://tms:{SECRET}@127.0.0.1:{port}?connect_timeout=0.5",
        "redis": f"redis://:{SECRET}@127.0.0.1:{port}/0",
    }[scheme]
    emit_ticks(engine, ManualClock(datetime.now(UTC)), [1, 2], key="a")
    env = dict(os.environ)
    metrics_port = free_port()
    command = [SIGNAL_MGMT, "relay", "--database-url", database_url, "--poll-interval", "0.05",
               "--metrics-port", str(metrics_port)]  # fmt: skip
    if source == "env":
        env["SIGNAL_MGMT_PUBLISHER"] = url
    else:
        spec_file = tmp_path / "publisher.spec"
        spec_file.write_text(url + "\n")
        spec_file.chmod(0o600)
        command += ["--publisher-file", str(spec_file)]
    log = tmp_path / "relay.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, stderr=stderr, env=env)
    try:
        deadline = time.monotonic() + 60  # turns a hang into a failure; never a timing check
        while "failed (try 2)" not in log.read_text():  # retried, logged twice
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as response:
            metrics = response.read().decode()
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    logged = log.read_text()
    assert code == 0, logged
    assert f"publishing to {redact_url(url)}" in logged
    with engine.connect() as conn:
        errors = list(conn.execute(select(OutboxRow.last_error)).scalars())
    assert all(errors), errors  # the failures were recorded ...
    engine.dispose()
    for text in (logged, metrics, *errors):
        assert SECRET not in text  # ... and none of them shows the password
