from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine, insert

from signal_mgmt.errors import ConfigError, IntegrityViolation, StorageError
from signal_mgmt.models import OutboxRow
from signal_mgmt.settings import DEFAULT_DATABASE_URL, load_settings
from signal_mgmt.storage.db import make_engine, transaction


def test_default_database_is_embedded_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIGNAL_MGMT_DATABASE_URL", raising=False)
    assert load_settings().database_url == DEFAULT_DATABASE_URL
    assert DEFAULT_DATABASE_URL.startswith("sqlite:///")


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNAL_MGMT_RELAY_BATCH_SIZE", "42")
    assert load_settings().relay_batch_size == 42


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("SIGNAL_MGMT_DATABASE_URL", "not a url"),
        ("SIGNAL_MGMT_DATABASE_URL", "mysql://root@127.0.0.1/test"),
        ("SIGNAL_MGMT_RELAY_BATCH_SIZE", "0"),
        ("SIGNAL_MGMT_RELAY_POLL_INTERVAL", "soon"),
    ],
)
def test_bad_setting_is_one_line_config_error(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "\n" not in str(info.value)
    assert env.removeprefix("SIGNAL_MGMT_").lower() in str(info.value)


@pytest.mark.parametrize(
    "url", ["", "nonsense://", "mysql://root@127.0.0.1/test", "postgresql+nodriver://h/db"]
)
def test_make_engine_refuses_bad_urls(url: str) -> None:
    with pytest.raises(ConfigError):
        make_engine(url)


def _row(event_id: uuid.UUID) -> dict[str, object]:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, tzinfo=UTC)
    return {
        "event_id": event_id,
        "event_type": "T",
        "aggregate_type": "a",
        "aggregate_id": "1",
        "partition_key": "k",
        "payload": {},
        "headers": {},
        "created_at": now,
        "available_at": now,
    }


def test_unique_violation_is_translated_with_constraint_name(engine: Engine) -> None:
    event_id = uuid.uuid4()
    with transaction(engine) as conn:
        conn.execute(insert(OutboxRow), [_row(event_id)])
    with pytest.raises(IntegrityViolation) as info, transaction(engine) as conn:
        conn.execute(insert(OutboxRow), [_row(event_id)])
    assert isinstance(info.value, StorageError)
    assert info.value.constraint_name is not None
    assert "event_id" in info.value.constraint_name
