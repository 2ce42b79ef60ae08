"""TMS: the only code that writes ``trades`` (open here; close in close.py)."""

from signal_mgmt.tms.open import OpenResult, TradeOpener

__all__ = ["OpenResult", "TradeOpener"]
