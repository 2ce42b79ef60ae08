"""A publisher that writes each event to the ``logging`` system."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from signal_mgmt.outbox.events import OutboxMessage


class LoggingPublisher:
    """Logs one JSON line per event at INFO on ``logger`` (default ``signal_mgmt.outbox``)."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger("signal_mgmt.outbox")

    def publish(self, messages: Sequence[OutboxMessage]) -> None:
        for message in messages:
            self._logger.info("%s", json.dumps(message.to_dict(), sort_keys=True))
