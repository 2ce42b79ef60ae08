"""`signal-mgmt demo`: a simulated NSE trading day through the whole library."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from signal_mgmt.cli.common import DATABASE_URL_HELP, one_line_errors, open_engine, settings_for
from signal_mgmt.demo.accounts import pick_symbols
from signal_mgmt.demo.day import DemoConfig, StepStatus, TradingDay, trading_session
from signal_mgmt.demo.render import render_summary
from signal_mgmt.demo.sample import load_sample_instruments
from signal_mgmt.demo.summary import build_summary
from signal_mgmt.errors import ConfigError, InvalidInputError
from signal_mgmt.market.calendar import ExchangeCalendar, nse_calendar
from signal_mgmt.market.clock import SystemClock
from signal_mgmt.outbox.publishers.jsonl import appendable_file
from signal_mgmt.storage.migrations import downgrade, upgrade

INVARIANT_FAILED = 1
MAX_USERS = 1000

EventsFile = typer.Option(
    Path("demo-events.jsonl"), "--events", help="JSONL file the relay publishes to (appended)."
)
JsonSummary = typer.Option(None, "--json-summary", help="Also write the summary as JSON here.")


def _trading_day(text: str | None, calendar: ExchangeCalendar) -> date:
    """``--date``, or the latest NSE trading day up to today (Asia/Kolkata)."""
    if text is None:
        day = calendar.trading_date(SystemClock().now())
        while calendar.session(day) is None:
            day -= timedelta(days=1)
        return day
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(
            f"bad --date {text!r}: expected YYYY-MM-DD", field="date", value=text
        ) from None
    known = sorted({holiday.year for holiday in calendar.holidays})
    if day.year not in known:
        raise InvalidInputError(
            f"--date {day}: the NSE calendar knows the holidays of {known[0]}-{known[-1]} only",
            field="date",
            value=text,
        )
    trading_session(calendar, day)  # refuses holidays and weekends with a clear message
    return day


def _check_arguments(symbols: int, users: int, events: Path, json_summary: Path | None) -> None:
    """Everything the day needs from its flags, checked before a database is touched."""
    pick_symbols(load_sample_instruments(), symbols)  # refuses a count outside the sample
    if not 1 <= users <= MAX_USERS:
        raise InvalidInputError(
            f"--users must be at least 1 and at most {MAX_USERS}", field="users", value=users
        )
    _check_writable(events, "--events")
    if json_summary is not None:
        _check_writable(json_summary, "--json-summary")


def _check_writable(path: Path, flag: str) -> None:
    """A file the demo can create or append to; the error names the flag, not the publisher."""
    try:
        appendable_file(path)
    except ConfigError as error:
        raise ConfigError(f"{flag}: {str(error).removeprefix('JSONL ')}") from None
    if path.exists() and not path.is_file():
        # the demo reads its files back (the invariants check the events written):
        # /dev/full or a pipe would pass the write check and fail an hour into the day
        raise ConfigError(f"{flag}: {path} is not a regular file")


def demo(
    *,
    seed: int = typer.Option(7, "--seed", help="Seed of the ticks and the faults."),
    symbols: int = typer.Option(20, "--symbols", help="How many instruments trade (1-38)."),
    users: int = typer.Option(6, "--users", help="How many user-brokers take signals."),
    day: str | None = typer.Option(
        None, "--date", help="Trading day YYYY-MM-DD (default: the latest NSE trading day)."
    ),
    database_url: str | None = typer.Option(None, "--database-url", help=DATABASE_URL_HELP),
    events: Path = EventsFile,
    json_summary: Path | None = JsonSummary,
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Live progress."),
    fresh: bool = typer.Option(
        False, "--fresh", help="Start from an empty database (drops the library's tables first)."
    ),
) -> None:
    """Simulate an NSE trading day end to end; exit 1 if an invariant fails.

    Every flag is checked before the database is created or migrated.
    """
    console = Console()
    with one_line_errors():
        trading = _trading_day(day, nse_calendar())
        _check_arguments(symbols, users, events, json_summary)
        settings = settings_for(database_url)
        engine = open_engine(settings, create=True)
        try:
            if fresh:
                downgrade(engine, "base")
            upgrade(engine)
            config = DemoConfig(
                day=trading,
                settings=settings,
                events_path=events,
                seed=seed,
                symbols=symbols,
                users=users,
            )
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                disable=not progress,
            ) as bar:
                task = bar.add_task(f"NSE {trading}", total=None, status="")

                def show(step: StepStatus) -> None:
                    local = step.at.astimezone(nse_calendar().timezone)
                    bar.update(
                        task,
                        completed=step.step,
                        total=step.steps,
                        status=f"{local:%H:%M} IST · {step.signals} signals · "
                        f"{step.open_trades} open · {step.closed_trades} closed",
                    )

                run = TradingDay(config, on_step=show).run()
            summary = build_summary(engine, run)
        finally:
            engine.dispose()
    render_summary(summary, console)
    if json_summary is not None:
        json_summary.write_text(json.dumps(summary, indent=2) + "\n")
    if not summary["invariants_hold"]:
        typer.echo("error: an invariant failed (see the table above)", err=True)
        raise typer.Exit(INVARIANT_FAILED)
