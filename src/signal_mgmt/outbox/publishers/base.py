"""The ``Publisher`` port: where the relay sends events.

A host writes its own publisher in a few lines::

    class KafkaPublisher:
        def publish(self, messages: Sequence[OutboxMessage]) -> None:
            for message in messages:
                producer.produce(topic, key=message.partition_key,
                                 value=json.dumps(message.to_dict()))
            if producer.flush(10):  # messages still queued
                raise PublishError("kafka flush timed out", transient=True)

Contract:

* ``messages`` are in delivery order (per key, by outbox id). Deliver them in
  that order, or at least keep the order of each ``partition_key``.
* All or nothing per call: return only when every message is accepted by the
  broker; raise ``PublishError`` otherwise. The relay then treats the whole
  call as failed and delivers it again later, so brokers see at-least-once
  delivery; ``event_id`` is stable across re-deliveries so consumers can drop
  duplicates (``signal_mgmt.outbox.inbox``).
* ``PublishError(transient=True)`` (broker down, timeout): retried with
  exponential backoff. ``transient=False`` (the broker refuses the message):
  the event goes DEAD without more tries.
* Any other exception is a bug: it stops the relay (it is never swallowed).
* ``close()`` is optional; the relay calls it, if present, when it stops.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from signal_mgmt.outbox.events import OutboxMessage


@runtime_checkable
class Publisher(Protocol):
    def publish(self, messages: Sequence[OutboxMessage]) -> None:
        """Deliver all ``messages`` in order, or raise ``PublishError``."""
        ...


def close_publisher(publisher: Publisher) -> None:
    """Call the publisher's optional ``close()``."""
    close = getattr(publisher, "close", None)
    if callable(close):
        close()
