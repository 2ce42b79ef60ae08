"""The suite's start-up check: a malformed server URL is one line naming the setting."""

from __future__ import annotations

import pytest

from services import Service


@pytest.mark.parametrize(
    ("name", "env", "url"),
    [
        ("NATS", "SIGNAL_MGMT_TEST_NATS_URL", "garbage"),
        ("PostgreSQL", "SIGNAL_MGMT_TEST_DATABASE_URL", "postgresql://postgres:pw@[::1/test"),
        ("Redis", "SIGNAL_MGMT_TEST_REDIS_URL", "redis://127.0.0.1:99999/0"),
    ],
)
def test_a_malformed_server_url_names_the_setting(name: str, env: str, url: str) -> None:
    problem = Service(name, env, url).problem()
    assert problem == f"{env} is not a {name} URL: fix or unset it"
