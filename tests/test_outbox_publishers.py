"""Publishers shipped with the library and the SPEC parser."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from signal_mgmt.errors import ConfigError, PublishError
from signal_mgmt.outbox.events import OutboxMessage
from signal_mgmt.outbox.publishers import (
    InMemoryPublisher,
    JsonlPublisher,
    LoggingPublisher,
    Publisher,
    publisher_from_spec,
)
from signal_mgmt.outbox.publishers import spec as spec_module


def message(n: int) -> OutboxMessage:
    return OutboxMessage(
        id=n,
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, str(n)),
        event_type="TICK",
        aggregate_type="test",
        aggregate_id=str(n),
        partition_key="k",
        payload={"n": n},
        headers={},
        created_at=datetime(2026, 11, 25, tzinfo=UTC),
        attempts=0,
    )


def test_jsonl_appends_one_object_per_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    publisher = JsonlPublisher(path)
    publisher.publish([message(1), message(2)])
    publisher.publish([])
    publisher.close()
    JsonlPublisher(path).publish([message(3)])  # a new publisher appends, never truncates
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["payload"]["n"] for line in lines] == [1, 2, 3]
    assert lines[0]["event_id"] == str(message(1).event_id)


def test_jsonl_target_in_a_missing_folder_is_refused_when_built(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        JsonlPublisher(tmp_path / "missing-dir" / "x.jsonl")
    with pytest.raises(ConfigError, match="is a directory"):
        JsonlPublisher(tmp_path)


def test_jsonl_target_lost_after_start_is_a_transient_publish_error(tmp_path: Path) -> None:
    folder = tmp_path / "gone"
    folder.mkdir()
    publisher = JsonlPublisher(folder / "x.jsonl")
    folder.rmdir()
    with pytest.raises(PublishError) as caught:
        publisher.publish([message(1)])
    assert caught.value.transient


def test_memory_publisher_fails_as_told() -> None:
    publisher = InMemoryPublisher()
    publisher.fail_next(1, transient=False)
    with pytest.raises(PublishError) as caught:
        publisher.publish([message(1)])
    assert not caught.value.transient
    publisher.publish([message(1)])
    publisher.publish([message(1)])
    assert publisher.event_ids() == [message(1).event_id]
    assert len(publisher.messages) == 2


def test_logging_publisher_logs_json(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="signal_mgmt.outbox"):
        LoggingPublisher().publish([message(7)])
    assert json.loads(caplog.records[0].getMessage())["payload"] == {"n": 7}


def test_spec_builds_the_shipped_publishers(tmp_path: Path) -> None:
    assert isinstance(publisher_from_spec("log"), LoggingPublisher)
    jsonl = publisher_from_spec(f"jsonl:{tmp_path / 'x.jsonl'}")
    assert isinstance(jsonl, JsonlPublisher)
    assert isinstance(jsonl, Publisher)


@pytest.mark.parametrize("spec", ["", "memory", "jsonl:", "kafka://host", "nats:/x", "LOG"])
def test_unknown_spec_is_a_config_error(spec: str) -> None:
    with pytest.raises(ConfigError):
        publisher_from_spec(spec)


def test_broker_spec_without_its_module_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(spec_module.BROKER_MODULES, "nats", ("signal_mgmt.no_such_module", "nats"))
    with pytest.raises(ConfigError, match=r"pip install 'signal-mgmt\[nats\]'"):
        publisher_from_spec("nats://127.0.0.1:4222")
