"""Importing the library has no side effects: no thread, no engine, no connection."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import gc, threading
import sqlalchemy
import signal_mgmt, signal_mgmt.cli, signal_mgmt.demo
engines = [o for o in gc.get_objects() if isinstance(o, sqlalchemy.engine.Engine)]
print(threading.active_count(), len(engines))
"""


def test_import_creates_no_thread_and_no_engine() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["1", "0"]
