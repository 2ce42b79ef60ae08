"""SignalCandidate: what a detector hands ``SignalService.publish``."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, JsonValue, field_validator, model_validator

from signal_mgmt.market.clock import require_aware
from signal_mgmt.models import Direction
from signal_mgmt.validation import InputModel, Price


class SignalCandidate(InputModel):
    """A detected symbol condition. Bad data raises ``InvalidInputError`` at construction.

    Prices may arrive as floats from a detector; they are taken as decimals here
    and put on the instrument's tick by ``SignalService`` before the signal's key
    is formed, so float noise inside a tick never makes a second signal.
    """

    symbol: str = Field(min_length=1, max_length=64, pattern=r"^\S+$")
    direction: Direction
    confluence_type: str = Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")
    detected_at: datetime
    effective_floor: Price
    effective_ceiling: Price
    metadata: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("detected_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return require_aware(value, "detected_at")

    @model_validator(mode="after")
    def _floor_not_above_ceiling(self) -> SignalCandidate:
        if self.effective_floor > self.effective_ceiling:
            raise ValueError("effective_floor must not be above effective_ceiling")
        return self
