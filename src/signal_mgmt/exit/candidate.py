"""What Stage A (detection) hands Stage B (ExitIntentService)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, field_validator

from signal_mgmt.market.clock import require_aware
from signal_mgmt.models import ExitReason
from signal_mgmt.validation import ExactPrice, Id, InputModel


class ExitCandidate(InputModel):
    """ "Trade ``trade_id`` meets exit condition ``reason`` at ``price``, seen at ``detected_at``."

    ``trigger_level`` is the level that was crossed (None for TIME and MANUAL).
    ``detected_at`` is the observation's own time (the tick's): the episode fires and
    its cooldown runs on it, and a candidate older than the episode's last firing or
    clear is refused as STALE. Bad data raises ``InvalidInputError``.
    """

    trade_id: Id
    reason: ExitReason
    price: ExactPrice
    detected_at: datetime
    symbol: str | None = Field(default=None, min_length=1, max_length=64)
    trigger_level: ExactPrice | None = None

    @field_validator("detected_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return require_aware(value, "detected_at")


class ExitCleared(InputModel):
    """The condition ``reason`` of ``trade_id`` no longer holds: its episode may re-arm.

    ``cleared_at`` is the tick's time; a clear not newer than the episode's firing is STALE.
    """

    trade_id: Id
    reason: ExitReason
    cleared_at: datetime

    @field_validator("cleared_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return require_aware(value, "cleared_at")
