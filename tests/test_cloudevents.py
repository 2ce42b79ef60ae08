from __future__ import annotations

import dataclasses
import json
import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker_support import message
from signal_mgmt.errors import InvalidInputError
from signal_mgmt.outbox.cloudevents import (
    PARTITION_KEY_HEADER,
    CloudEventFormat,
    decode,
)

VALID_ID = str(uuid.UUID(int=7))  # fixed: xdist workers must collect the same test ids


def test_envelope_maps_every_attribute() -> None:
    msg = message(7, "NSE:INFY", headers={"traceparent": "00-abc-def-01"})
    envelope = json.loads(CloudEventFormat(source="tms-prod").encode(msg))
    assert envelope == {
        "specversion": "1.0",
        "id": str(msg.event_id),
        "source": "tms-prod",
        "type": "SIGNAL_DETECTED",
        "subject": "sig-7",
        "time": "2026-11-25T04:00:00Z",
        "datacontenttype": "application/json",
        "partitionkey": "NSE:INFY",
        "aggregatetype": "signal",
        "data": {"n": 7, "key": "NSE:INFY", "price": "101.05"},
    }


def test_extension_attribute_names_are_valid_cloudevents_names() -> None:
    envelope = CloudEventFormat().envelope(message(1))
    for name in envelope:
        assert re.fullmatch(r"[a-z0-9]{1,20}", name), name


def test_headers_carry_the_partition_key_and_host_headers_cannot_override_it() -> None:
    msg = message(1, "k9", headers={"traceparent": "t", PARTITION_KEY_HEADER: "forged"})
    headers = CloudEventFormat().headers(msg)
    assert headers == {"traceparent": "t", PARTITION_KEY_HEADER: "k9"}


def test_default_source() -> None:
    assert decode(CloudEventFormat().encode(message(1))).source == "signal-mgmt"


def test_empty_source_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        CloudEventFormat(source="")


@given(
    n=st.integers(min_value=0, max_value=2**40),
    key=st.text(min_size=1, max_size=50),
    data=st.dictionaries(st.text(max_size=10), st.one_of(st.integers(), st.text(max_size=20))),
)
def test_encode_decode_round_trip(n: int, key: str, data: dict[str, object]) -> None:
    msg = dataclasses.replace(message(n, key), payload=data)
    event = decode(CloudEventFormat().encode(msg))
    assert event.id == msg.event_id
    assert event.type == msg.event_type
    assert event.subject == msg.aggregate_id
    assert event.time == msg.created_at
    assert event.partition_key == key
    assert event.aggregate_type == "signal"
    assert event.data == data


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b"\xff\xfe",
        json.dumps({"specversion": "1.0", "id": VALID_ID, "source": "s"}),
        json.dumps({"specversion": "0.3", "id": VALID_ID, "source": "s", "type": "t"}),
        json.dumps({"specversion": "1.0", "id": "not-a-uuid", "source": "s", "type": "t"}),
        json.dumps({"specversion": "1.0", "id": VALID_ID, "source": "s", "type": "t", "time": "x"}),
        json.dumps(
            {
                "specversion": "1.0",
                "id": VALID_ID,
                "source": "s",
                "type": "t",
                "time": "2026-11-25T04:00:00",
            }
        ),
        json.dumps({"specversion": "1.0", "id": VALID_ID, "source": "s", "type": "t", "Bad": 1}),
    ],
)
def test_malformed_envelopes_are_invalid_input(body: bytes | str) -> None:
    with pytest.raises(InvalidInputError):
        decode(body)
