"""TMS: the only code that writes ``trades`` (open, close) and the loop that drives them."""

from signal_mgmt.tms.loop import LoopReplayReport, PassReport, TradeLoop
from signal_mgmt.tms.open import OpenResult, TradeOpener

__all__ = ["LoopReplayReport", "OpenResult", "PassReport", "TradeLoop", "TradeOpener"]
