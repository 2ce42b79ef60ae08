"""`signal-mgmt relay` and the `signal-mgmt outbox ...` operations."""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import typer
from sqlalchemy import Engine

from signal_mgmt.cli.common import (
    DATABASE_URL_HELP,
    one_line_errors,
    open_engine,
    parse_duration,
    parse_event_id,
    settings_for,
)
from signal_mgmt.errors import ConfigError, InvalidInputError
from signal_mgmt.market.clock import SystemClock
from signal_mgmt.models import OutboxStatus
from signal_mgmt.outbox import store
from signal_mgmt.outbox.publishers.spec import SPEC_HELP, publisher_from_spec
from signal_mgmt.outbox.relay import DEFAULT_LEASE, OutboxRelay
from signal_mgmt.outbox.thread import RelayThread
from signal_mgmt.redaction import redact_url
from signal_mgmt.settings import Settings
from signal_mgmt.storage.db import transaction
from signal_mgmt.validation import require_count

T = TypeVar("T")

SIGNAL_CHECK_SECONDS = 1.0
"""How often the relay command checks that its relay thread is still alive (a signal
wakes it at once)."""

outbox_app = typer.Typer(help="Inspect and operate the outbox.", no_args_is_help=True)

DatabaseUrl = typer.Option(None, "--database-url", help=DATABASE_URL_HELP)
StatusFilter = typer.Option(
    ["PENDING", "DEAD"], "--status", help="PENDING, DEAD, PARKED or PUBLISHED; repeatable."
)
EventIds = typer.Option(..., "--event-id", help="Event id (UUID); repeat for several.")
PublisherFile = typer.Option(
    None, "--publisher-file", help="Read the publisher SPEC from this file (keep it mode 0600)."
)


def relay(
    *,
    database_url: str | None = DatabaseUrl,
    publisher: str | None = typer.Option(
        None,
        "--publisher",
        help=f"{SPEC_HELP}. Default: $SIGNAL_MGMT_PUBLISHER, else log. No password here "
        "(any user of the machine can read a command line): use the variable or --publisher-file.",
    ),
    publisher_file: Path | None = PublisherFile,
    poll_interval: float | None = typer.Option(
        None, "--poll-interval", help="Seconds between polls when no wake-up arrives."
    ),
    batch_size: int | None = typer.Option(None, "--batch-size"),
    lease: str = typer.Option(
        f"{int(DEFAULT_LEASE.total_seconds())}s",
        "--lease",
        help="How long a claimed batch stays reserved (takeover time after a crash).",
    ),
    metrics_port: int | None = typer.Option(
        None, "--metrics-port", help="Serve Prometheus metrics on this port (extra 'metrics')."
    ),
) -> None:
    """Run the relay in the foreground until SIGINT or SIGTERM, then stop cleanly."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    with one_line_errors():
        if metrics_port is not None:
            _require_port(metrics_port, "--metrics-port")
        settings = settings_for(
            database_url, relay_poll_interval=poll_interval, relay_batch_size=batch_size
        )
        lease_length = parse_duration(lease)
        spec = _publisher_spec(publisher, publisher_file, settings)
        sink = publisher_from_spec(spec)
        engine = open_engine(settings)
        outbox_relay = OutboxRelay.from_settings(
            engine, sink, settings, clock=SystemClock(), lease=lease_length
        )
        thread = RelayThread(outbox_relay, poll_interval=settings.relay_poll_interval)
        if metrics_port is not None:
            _serve_metrics(thread, metrics_port)

    stop_requested = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("relay: %s, stopping", signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    logging.getLogger(__name__).info("relay: running, publishing to %s", redact_url(spec))
    # The loop runs in a thread so that a signal is honoured at once, even while the
    # loop waits on a database lost from the network (stop() is bounded).
    thread.start()
    try:
        with one_line_errors():  # e.g. the schema is missing: one line, exit 1
            while thread.alive and not stop_requested.wait(SIGNAL_CHECK_SECONDS):
                pass
            thread.stop()
    finally:
        engine.dispose()


def _publisher_spec(given: str | None, path: Path | None, settings: Settings) -> str:
    """The SPEC from --publisher-file, --publisher (no credentials) or $SIGNAL_MGMT_PUBLISHER."""
    if given is not None and path is not None:
        raise ConfigError("give --publisher or --publisher-file, not both")
    if path is not None:
        try:
            spec = path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ConfigError(f"cannot read --publisher-file {path}: {error.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"--publisher-file {path} is not UTF-8 text") from None
        if not spec:
            raise ConfigError(f"--publisher-file {path} is empty")
        return spec
    if given is not None:
        if redact_url(given) != given:
            raise ConfigError(
                f"--publisher {redact_url(given)} carries credentials, which every user of this "
                "machine can read: put the SPEC in $SIGNAL_MGMT_PUBLISHER or --publisher-file"
            )
        return given
    if settings.relay_publisher is not None:
        return settings.relay_publisher.get_secret_value()
    return "log"


@outbox_app.command()
def status(
    database_url: str | None = DatabaseUrl,
    as_json: bool = typer.Option(False, "--json", help="One JSON object."),
) -> None:
    """Counts per state and the age of the oldest pending event."""
    with one_line_errors():
        engine = open_engine(settings_for(database_url))
        try:
            counts = store.outbox_counts(engine, SystemClock())
        finally:
            engine.dispose()
    if as_json:
        typer.echo(json.dumps(counts.as_dict()))
        return
    for name, value in counts.as_dict().items():
        shown = "-" if value is None else (f"{value:.1f}" if isinstance(value, float) else value)
        typer.echo(f"{name:<28}{shown}")


@outbox_app.command("retry-dead")
def retry_dead(
    database_url: str | None = DatabaseUrl,
    event_id: str | None = typer.Option(None, "--event-id", help="Only this event (UUID)."),
) -> None:
    """Give DEAD events (all, or one) a fresh attempt budget."""
    with one_line_errors():
        chosen = None if event_id is None else parse_event_id(event_id)
        moved = _with_engine(
            database_url, lambda engine: store.retry_dead(engine, SystemClock(), chosen)
        )
    typer.echo(f"{moved} event(s) back to PENDING")


@outbox_app.command()
def purge(
    older_than: str = typer.Option(..., "--older-than", help="e.g. 7d, 12h, 30m"),
    database_url: str | None = DatabaseUrl,
    batch_size: int = typer.Option(1000, "--batch-size", help="Rows deleted per transaction."),
) -> None:
    """Delete PUBLISHED events published before now - DURATION, in bounded batches."""
    with one_line_errors():
        age = parse_duration(older_than)
        require_count(batch_size, "--batch-size")
        deleted = _with_engine(
            database_url,
            lambda engine: store.purge_published(engine, SystemClock(), age, batch_size=batch_size),
        )
    typer.echo(f"{deleted} published event(s) deleted")


@outbox_app.command()
def inspect(
    *,
    database_url: str | None = DatabaseUrl,
    state: list[str] = StatusFilter,
    key: str | None = typer.Option(None, "--key", help="Only this partition key."),
    event_type: str | None = typer.Option(None, "--type", help="Only this event type."),
    older_than: str | None = typer.Option(None, "--older-than", help="Emitted before now - AGE."),
    limit: int = typer.Option(100, "--limit"),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List pending / dead / parked events, oldest first."""
    with one_line_errors():
        age = None if older_than is None else parse_duration(older_than)
        require_count(limit, "--limit")
        wanted = [s.upper() for s in state]
        entries = _with_engine(
            database_url,
            lambda engine: store.list_events(
                engine,
                SystemClock(),
                statuses=wanted,
                partition_key=key,
                event_type=event_type,
                older_than=age,
                limit=limit,
            ),
        )
    for entry in entries:
        if as_json:
            typer.echo(json.dumps(entry.as_dict()))
        else:
            error = f"  {entry.last_error}" if entry.last_error else ""
            typer.echo(
                f"{entry.id}  {entry.event_id}  {entry.status:<9} {entry.event_type}  "
                f"key={entry.partition_key}  attempts={entry.attempts}  "
                f"{entry.created_at.isoformat()}{error}"
            )


@outbox_app.command()
def replay(database_url: str | None = DatabaseUrl, event_id: list[str] = EventIds) -> None:
    """Publish chosen PUBLISHED events again (new delivery, same event_id)."""
    with one_line_errors():
        chosen = [parse_event_id(text) for text in event_id]
        count = _with_engine(database_url, lambda e: store.replay(e, SystemClock(), chosen))
    typer.echo(f"{count} event(s) queued for replay")


@outbox_app.command()
def park(database_url: str | None = DatabaseUrl, event_id: list[str] = EventIds) -> None:
    """Set poison events aside (PARKED); the later events of their keys flow on."""
    _set_aside(database_url, event_id, store.park, OutboxStatus.PARKED)


@outbox_app.command()
def unpark(database_url: str | None = DatabaseUrl, event_id: list[str] = EventIds) -> None:
    """Put PARKED events back to PENDING, to be published next."""
    _set_aside(database_url, event_id, store.unpark, OutboxStatus.PENDING)


def _set_aside(
    database_url: str | None,
    event_ids: list[str],
    action: Callable[..., Any],
    target: OutboxStatus,
) -> None:
    with one_line_errors():
        chosen = [parse_event_id(text) for text in event_ids]
        settings = settings_for(database_url)
        engine = open_engine(settings)
        try:
            with transaction(engine) as conn:  # all or none
                for one in chosen:
                    action(engine, SystemClock(), one, connection=conn)
        finally:
            engine.dispose()
    typer.echo(f"{len(chosen)} event(s) now {target.value}")


def _require_port(port: int, option: str) -> int:
    if not 1 <= port <= 65535:
        raise InvalidInputError(f"{option} must be a TCP port in 1..65535", field=option)
    return port


def _serve_metrics(thread: RelayThread, port: int) -> None:
    """Start the metrics endpoint; a missing extra or a busy port is one ``ConfigError``."""
    try:
        from signal_mgmt.outbox.prometheus import serve_metrics

        serve_metrics(thread, port)
    except ImportError as error:
        raise ConfigError(
            f"metrics need the 'metrics' extra ({error}): pip install 'signal-mgmt[metrics]'"
        ) from None
    except OSError as error:
        raise ConfigError(f"cannot serve metrics on port {port}: {error.strerror}") from None


def _with_engine(database_url: str | None, work: Callable[[Engine], T]) -> T:
    engine = open_engine(settings_for(database_url))
    try:
        return work(engine)
    finally:
        engine.dispose()
