"""The `signal-mgmt` command line."""

from __future__ import annotations

import typer

from signal_mgmt.cli import demo, outbox
from signal_mgmt.cli.common import DATABASE_URL_HELP, one_line_errors, open_engine, settings_for
from signal_mgmt.storage.migrations import upgrade

app = typer.Typer(
    help="Signal management: migrations, the outbox relay and its operations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def migrate(
    database_url: str | None = typer.Option(None, "--database-url", help=DATABASE_URL_HELP),
) -> None:
    """Create or upgrade the schema (Alembic upgrade head)."""
    with one_line_errors():
        settings = settings_for(database_url)
        engine = open_engine(settings, create=True)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
    typer.echo("schema is up to date", err=True)


app.command()(outbox.relay)
app.add_typer(outbox.outbox_app, name="outbox")

# ---- commands of other modules register below, one line each ----------------------------
app.command()(demo.demo)


def main() -> None:
    app()
