"""The documented Debezium mapping, checked against a real PostgreSQL outbox."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from sqlalchemy import Engine, text

from signal_mgmt.errors import InvalidInputError
from signal_mgmt.market.clock import ManualClock
from signal_mgmt.models import OutboxRow
from signal_mgmt.outbox.debezium import (
    VIEW_NAME,
    connector_properties,
    create_view_sql,
    drop_view_sql,
)
from signal_mgmt.outbox.emit import emit
from signal_mgmt.outbox.events import Event
from signal_mgmt.storage.db import transaction


class Detected(BaseModel):
    symbol: str
    price: str


def detected(n: int, symbol: str) -> Event[Detected]:
    return Event[Detected](
        event_type="SIGNAL_DETECTED",
        aggregate_type="signal",
        aggregate_id=f"sig-{n}",
        idempotency_key=f"sig-{n}",
        partition_key=symbol,
        payload=Detected(symbol=symbol, price="101.05"),
    )


@pytest.mark.postgres_only
def test_view_exposes_our_rows_with_debezium_names_and_types(
    engine: Engine, clock: ManualClock
) -> None:
    events = [detected(1, "NSE:INFY"), detected(2, "NSE:TCS"), detected(3, "NSE:INFY")]
    with transaction(engine) as conn:
        emit(conn, events, clock)
        conn.execute(text(create_view_sql()))
        conn.execute(text(create_view_sql()))  # CREATE OR REPLACE: re-running is harmless
    with engine.connect() as conn:
        columns = conn.execute(
            text(
                "SELECT column_name, data_type, character_maximum_length "
                "FROM information_schema.columns WHERE table_name = :view ORDER BY ordinal_position"
            ),
            {"view": VIEW_NAME},
        ).all()
        rows = conn.execute(
            text(
                "SELECT id, aggregatetype, aggregateid, type, payload, timestamp, aggregate_id "
                f"FROM {VIEW_NAME} ORDER BY seq"
            )
        ).all()
    assert [tuple(c) for c in columns[:6]] == [
        ("id", "uuid", None),
        ("aggregatetype", "character varying", 255),
        ("aggregateid", "character varying", 255),
        ("type", "character varying", 255),
        ("payload", "jsonb", None),
        ("timestamp", "timestamp with time zone", None),
    ]
    assert [c[0] for c in columns[6:]] == ["aggregate_id", "headers", "seq"]
    assert [
        (row.id, row.aggregatetype, row.aggregateid, row.type, row.payload, row.aggregate_id)
        for row in rows
    ] == [
        (
            e.event_id,
            "signal",
            e.key,
            "SIGNAL_DETECTED",
            e.payload.model_dump(),
            e.aggregate_id,
        )
        for e in events
    ]
    assert all(row.timestamp == clock.now() for row in rows)
    with transaction(engine) as conn:
        conn.execute(text(drop_view_sql()))
        conn.execute(text(drop_view_sql()))
        assert conn.execute(text("SELECT to_regclass(:v)"), {"v": VIEW_NAME}).scalar() is None


def test_connector_properties_name_real_outbox_columns() -> None:
    columns = set(OutboxRow.__table__.c.keys())
    props = connector_properties()
    for option in (
        "table.field.event.id",
        "table.field.event.key",
        "table.field.event.payload",
        "table.field.event.timestamp",
        "route.by.field",
    ):
        assert props[f"transforms.outbox.{option}"] in columns, option
    placements = props["transforms.outbox.table.fields.additional.placement"].split(",")
    assert {p.split(":")[0] for p in placements} <= columns
    assert props["transforms.outbox.table.field.event.key"] == "partition_key"  # keeps key order
    assert props["table.include.list"] == "public.outbox"


@pytest.mark.parametrize("name", ["", "Outbox", "outbox; drop table outbox", "1view", None])
def test_bad_identifiers_are_refused(name: str) -> None:
    with pytest.raises(InvalidInputError):
        create_view_sql(view=name)
    with pytest.raises(InvalidInputError):
        connector_properties(table=name)
