"""`signal-mgmt migrate`: upgrade (default), the DDL for a DBA, current revision, downgrade."""

from __future__ import annotations

from collections.abc import Callable

import typer
from sqlalchemy import Engine

from signal_mgmt.cli.common import DATABASE_URL_HELP, one_line_errors, open_engine, settings_for
from signal_mgmt.storage.migrations import current, downgrade, upgrade, upgrade_sql

migrate_app = typer.Typer(
    help="Create, upgrade, inspect or downgrade the library's schema (its own Alembic history)."
)

DatabaseUrl = typer.Option(None, "--database-url", help=DATABASE_URL_HELP)


@migrate_app.callback(invoke_without_command=True)
def migrate(
    ctx: typer.Context,
    database_url: str | None = DatabaseUrl,
    sql: bool = typer.Option(
        False, "--sql", help="Print the upgrade DDL (PostgreSQL) instead of running it."
    ),
) -> None:
    """Upgrade the schema to the newest revision (creates it, and the SQLite file, if missing)."""
    if ctx.invoked_subcommand is not None:
        return
    with one_line_errors():
        settings = settings_for(database_url)
        if sql:
            typer.echo(
                upgrade_sql(settings.database_url, schema=settings.database_schema), nl=False
            )
            return
        revisions = _on_database(database_url, _upgrade, create=True)
    typer.echo(f"schema is up to date ({', '.join(revisions)})", err=True)


@migrate_app.command("current")
def show_current(database_url: str | None = DatabaseUrl) -> None:
    """Print the revision the database is at (nothing if the library never migrated it)."""
    with one_line_errors():
        revisions = _on_database(database_url, current)
    for revision in revisions:
        typer.echo(revision)
    if not revisions:
        typer.echo("no signal_mgmt revision: run `signal-mgmt migrate`", err=True)


@migrate_app.command("downgrade")
def run_downgrade(
    revision: str = typer.Argument(..., help="Target revision; `base` drops every library table."),
    database_url: str | None = DatabaseUrl,
) -> None:
    """Take the schema back to REVISION (data in dropped tables is lost)."""
    with one_line_errors():
        revisions = _on_database(database_url, lambda engine: _downgrade(engine, revision))
    typer.echo(f"schema is at {', '.join(revisions) or 'base'}", err=True)


def _upgrade(engine: Engine) -> list[str]:
    upgrade(engine)
    return current(engine)


def _downgrade(engine: Engine, revision: str) -> list[str]:
    downgrade(engine, revision)
    return current(engine)


def _on_database(
    database_url: str | None, work: Callable[[Engine], list[str]], *, create: bool = False
) -> list[str]:
    engine = open_engine(settings_for(database_url), create=create)
    try:
        return work(engine)
    finally:
        engine.dispose()
