"""The servers the full test suite needs, where to find them, and the start-up check.

Each server's URL can be pointed elsewhere with its environment variable; the servers must
listen on loopback (the outage tests put a local TCP proxy in front of them).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import psycopg
from sqlalchemy.engine import make_url

DEFAULT_PORTS = {"postgresql": 5432, "nats": 4222, "amqp": 5672, "redis": 6379}


@dataclass(frozen=True)
class Service:
    name: str
    env: str
    url: str

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme.split("+")[0]

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORTS[self.scheme]

    @property
    def port(self) -> int:
        return self.address[1]

    def problem(self) -> str | None:
        """Why the server cannot be used, in one line; None when it answers."""
        try:
            self.address  # noqa: B018 - a URL that does not parse: name the setting, not a traceback
        except (ValueError, KeyError):
            return f"{self.env} is not a {self.name} URL: fix or unset it"
        try:
            if self.scheme == "postgresql":  # a real login: a missing database or role too
                url = make_url(self.url).set(drivername="postgresql")
                psycopg.connect(
                    url.render_as_string(hide_password=False), connect_timeout=3
                ).close()
            else:
                socket.create_connection(self.address, timeout=3).close()
        except (OSError, psycopg.Error) as error:
            reason = (
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            )
            host, port = self.address
            where = f"{self.name} is not reachable at {host}:{port}"
            return f"{where} ({reason}); start it or set {self.env}"
        return None


def _service(name: str, env: str, default: str) -> Service:
    return Service(name, env, os.environ.get(env, default))


POSTGRES = _service(
    "PostgreSQL",
    "SIGNAL_MGMT_TEST_DATABASE_URL",
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
)
NATS = _service("NATS", "SIGNAL_MGMT_TEST_NATS_URL", "nats://127.0.0.1:4222")
RABBITMQ = _service(
    "RabbitMQ", "SIGNAL_MGMT_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"
)
REDIS = _service("Redis", "SIGNAL_MGMT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ALL = (POSTGRES, NATS, RABBITMQ, REDIS)


def first_problem() -> str | None:
    """The first server of the full suite that does not answer, as one line."""
    return next((problem for service in ALL if (problem := service.problem())), None)
