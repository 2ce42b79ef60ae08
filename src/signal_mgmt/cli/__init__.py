"""The `signal-mgmt` command line."""

from __future__ import annotations

import typer

from signal_mgmt._version import __version__
from signal_mgmt.cli import demo, outbox, roles
from signal_mgmt.cli.migrate import migrate_app

app = typer.Typer(
    help="Signal management: migrations, the outbox relay and its operations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"signal-mgmt {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    _version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Signal management: migrations, the outbox relay and its operations."""


app.add_typer(migrate_app, name="migrate")
app.command()(outbox.relay)
app.add_typer(outbox.outbox_app, name="outbox")
app.command()(roles.roles)

# ---- commands of other modules register below, one line each ----------------------------
app.command()(demo.demo)


def main() -> None:
    app()
