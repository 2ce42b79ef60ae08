"""The events' ordering keys: one symbol's or one trade's events publish in commit order."""

from __future__ import annotations


def symbol_key(symbol: str) -> str:
    """Partition key of every entry event: one symbol's events publish in commit order."""
    return f"symbol:{symbol}"


def trade_key(trade_id: int) -> str:
    """Partition key of every trade and exit event: one trade's story publishes in commit order."""
    return f"trade:{trade_id}"
