"""A publisher that appends one JSON object per line to a file."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from signal_mgmt.errors import ConfigError, PublishError
from signal_mgmt.outbox.events import OutboxMessage


def appendable_file(path: str | Path) -> Path:
    """``path`` as a file this process can create or append to, else a ``ConfigError``.

    Checked when the publisher is built, so a bad target stops a relay (or the demo)
    before it starts instead of dead-lettering real events at the first publish.
    """
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise ConfigError(f"JSONL target {target} is a directory")
    if not folder.is_dir():
        raise ConfigError(f"JSONL target folder {folder} does not exist")
    if not os.access(target if target.exists() else folder, os.W_OK):
        raise ConfigError(f"JSONL target {target} is not writable")
    return target


class JsonlPublisher:
    """Appends each batch to ``path`` with ONE ``write`` and an fsync.

    The file is opened ``O_APPEND``: several relay processes may share one file,
    each batch landing whole, in the order the batches were published.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = appendable_file(path)
        self._lock = threading.Lock()
        self._fd: int | None = None

    def publish(self, messages: Sequence[OutboxMessage]) -> None:
        if not messages:
            return
        data = "".join(json.dumps(m.to_dict(), sort_keys=True) + "\n" for m in messages)
        with self._lock:
            try:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                os.write(self._fd, data.encode())
                os.fsync(self._fd)
            except OSError as error:
                raise PublishError(f"cannot append to {self.path}: {error}") from error

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
