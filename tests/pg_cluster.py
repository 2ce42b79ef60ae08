"""A throw-away PostgreSQL 15 cluster for tests and benchmarks that stop or restart the server.

The shared server on 5432 is never restarted: a test that needs an outage runs
``initdb`` into a temporary folder and starts its own server on a free loopback
port. PostgreSQL refuses to run as root, so under root the cluster belongs to
the ``postgres`` system user (``runuser``); otherwise to the current user.

    with PgCluster.started() as cluster:
        url = cluster.create_database("relay")
        cluster.restart()          # a server restart: every connection dies
        cluster.stop(); ...; cluster.start()   # an outage: connections refused
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

PG_BIN = Path(os.environ.get("SIGNAL_MGMT_PG_BIN", "/usr/lib/postgresql/15/bin"))
_SERVER_USER = "postgres"  # the user the server runs as when we are root


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PgCluster:
    """One data directory, one server on ``127.0.0.1:<port>``, trust auth, user postgres."""

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="sm-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self._as_user = _SERVER_USER if os.geteuid() == 0 else None
        if self._as_user is not None:
            user = pwd.getpwnam(self._as_user)
            os.chown(self.directory, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.directory}'",
            "fsync": "off",  # a test cluster: speed over durability
            "synchronous_commit": "off",
            "full_page_writes": "off",
            **(settings or {}),
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in options.items())

    @classmethod
    @contextmanager
    def started(cls, settings: dict[str, str] | None = None) -> Iterator[PgCluster]:
        cluster = cls(settings)
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.destroy()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        admin = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return self.url(name)

    def start(self) -> None:
        self._pg_ctl("start", "-w", "-l", str(self.log))

    def stop(self) -> None:
        """A fast shutdown: sessions are terminated (57P01), then connections are refused."""
        self._pg_ctl("stop", "-w", "-m", "fast")

    def restart(self) -> None:
        self._pg_ctl("restart", "-w", "-m", "fast", "-l", str(self.log))

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("stop", "-w", "-m", "immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), *args)

    def _run(self, program: str, *args: str) -> None:
        command = [str(PG_BIN / program), *args]
        if self._as_user is not None:
            command = ["runuser", "-u", self._as_user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            server_log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{program} {args[:2]} failed: {done.stderr}\n{server_log[-2000:]}")
