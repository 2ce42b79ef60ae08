"""Running Debezium's Outbox Event Router on our table instead of the relay (PostgreSQL).

Debezium's PostgreSQL connector reads the write-ahead log of TABLES, so it
captures ``outbox`` itself; :func:`connector_properties` maps the router's
fields to our column names. :func:`create_view_sql` gives the same mapping as a
view with Debezium's default column names and types, for anything that reads
the outbox with SQL (checks, a JDBC source, a migration to a Debezium-shaped
table); Debezium itself cannot stream a view. docs/outbox-adapters.md has the
whole procedure.

``aggregateid`` (Debezium's message key, hence the Kafka partition) is our
``partition_key``, not ``aggregate_id``: events of one key then share a
partition and keep their order, as they do through the relay.
"""

from __future__ import annotations

import re

from signal_mgmt.errors import InvalidInputError

VIEW_NAME = "outbox_debezium"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Debezium's default outbox column -> our column (and the type Debezium expects).
COLUMN_MAP: dict[str, tuple[str, str]] = {
    "id": ("event_id", "uuid"),
    "aggregatetype": ("aggregate_type", "varchar(255)"),
    "aggregateid": ("partition_key", "varchar(255)"),
    "type": ("event_type", "varchar(255)"),
    "payload": ("payload", "jsonb"),
    "timestamp": ("created_at", "timestamptz"),
}
# Kept beside Debezium's columns so a reader loses nothing of the row.
EXTRA_COLUMNS: dict[str, str] = {"aggregate_id": "aggregate_id", "headers": "headers", "seq": "id"}


def create_view_sql(view: str = VIEW_NAME, table: str = "outbox") -> str:
    """``CREATE OR REPLACE VIEW`` exposing ``table`` with Debezium's outbox column names."""
    columns = [
        f'{ours}::{sql_type} AS "{theirs}"' for theirs, (ours, sql_type) in COLUMN_MAP.items()
    ] + [f'{ours} AS "{theirs}"' for theirs, ours in EXTRA_COLUMNS.items()]
    select_list = ",\n       ".join(columns)
    return (
        f"CREATE OR REPLACE VIEW {_identifier(view)} AS\n"
        f"SELECT {select_list}\n"
        f"FROM {_identifier(table)}"
    )


def drop_view_sql(view: str = VIEW_NAME) -> str:
    return f"DROP VIEW IF EXISTS {_identifier(view)}"


def connector_properties(
    table: str = "outbox", schema: str = "public", transform: str = "outbox"
) -> dict[str, str]:
    """Debezium PostgreSQL connector + Outbox Event Router settings for our table.

    The host adds its connection settings (``database.*``, ``topic.prefix``,
    Kafka Connect converters) and may override any of these.
    """
    prefix = f"transforms.{_identifier(transform)}"
    return {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "plugin.name": "pgoutput",
        "table.include.list": f"{_identifier(schema)}.{_identifier(table)}",
        # Only inserts are events; the host's clean-up deletes are not.
        "skipped.operations": "u,d,t",
        "transforms": _identifier(transform),
        f"{prefix}.type": "io.debezium.transforms.outbox.EventRouter",
        f"{prefix}.table.field.event.id": "event_id",
        f"{prefix}.table.field.event.key": "partition_key",
        f"{prefix}.table.field.event.payload": "payload",
        f"{prefix}.table.field.event.timestamp": "created_at",
        f"{prefix}.route.by.field": "aggregate_type",
        f"{prefix}.table.expand.json.payload": "true",
        f"{prefix}.table.fields.additional.placement": (
            "event_type:header:type,aggregate_id:header:subject,"
            "aggregate_type:header:aggregatetype,partition_key:header:partitionkey"
        ),
    }


def _identifier(name: str) -> str:
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise InvalidInputError(
            "a plain lowercase SQL identifier is required", field="name", value=name
        )
    return name
