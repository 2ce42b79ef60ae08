"""`signal-mgmt roles --sql`: the least-privilege roles and grants, for a DBA to run."""

from __future__ import annotations

import typer

from signal_mgmt.cli.common import fail, one_line_errors, settings_for
from signal_mgmt.storage.roles import roles_sql


def roles(
    sql: bool = typer.Option(False, "--sql", help="Print the SQL (the only output offered)."),
    prefix: str = typer.Option("signal_mgmt", "--prefix", help="Roles are named PREFIX_<role>."),
) -> None:
    """Print roles signal, tms, execution, relay, reader and their grants (idempotent SQL).

    Run it as the owner of the tables after every `signal-mgmt migrate`; the schema is
    $SIGNAL_MGMT_SCHEMA. Then grant each service's login its role (docs/operations.md).
    """
    if not sql:
        fail("roles prints SQL for a DBA to review and run: add --sql")
    with one_line_errors():
        typer.echo(roles_sql(prefix, settings_for(None).database_schema), nl=False)
