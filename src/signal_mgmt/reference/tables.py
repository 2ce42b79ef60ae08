"""The default ReferenceData: the library's own tables."""

from __future__ import annotations

from sqlalchemy import Connection, and_, or_, select

from signal_mgmt.models import (
    ANY,
    Instrument,
    SizingMode,
    Subscription,
    Trade,
    TradeIntent,
    TradeIntentStatus,
    TradeStatus,
    UserBroker,
)
from signal_mgmt.reference.types import Account, InstrumentInfo, Position

_LIVE_INTENT = (TradeIntentStatus.APPROVED, TradeIntentStatus.PLACED)
_LIVE_TRADE = (TradeStatus.PENDING_ENTRY, TradeStatus.OPEN)


class TableReferenceData:
    """Reads ``instruments``, ``subscriptions``, ``user_brokers``, ``trade_intents``, ``trades``."""

    def instrument(self, connection: Connection, symbol: str) -> InstrumentInfo | None:
        found = connection.execute(
            select(Instrument.__table__).where(Instrument.symbol == symbol)
        ).first()
        if found is None:
            return None
        return InstrumentInfo(
            symbol=found.symbol,
            tick_size=found.tick_size,
            lot_size=found.lot_size,
            freeze_quantity=found.freeze_quantity,
            exchange=found.exchange,
            segment=found.segment,
            active=found.active,
        )

    def audience(self, connection: Connection, symbol: str, confluence_type: str) -> list[int]:
        query = (
            select(Subscription.user_broker_id)
            .where(
                Subscription.symbol.in_((symbol, ANY)),
                Subscription.confluence_type.in_((confluence_type, ANY)),
            )
            .distinct()
            .order_by(Subscription.user_broker_id)
        )
        return list(connection.execute(query).scalars())

    def account(self, connection: Connection, user_broker_id: int) -> Account | None:
        found = connection.execute(
            select(UserBroker.__table__).where(UserBroker.id == user_broker_id)
        ).first()
        if found is None:
            return None
        return Account(
            user_broker_id=found.id,
            enabled=found.enabled,
            connected=found.connected,
            available_capital=found.available_capital,
            sizing_mode=SizingMode(found.sizing_mode),
            reward_risk_ratio=found.reward_risk_ratio,
            fixed_quantity=found.fixed_quantity,
            fixed_capital=found.fixed_capital,
            risk_amount=found.risk_amount,
            max_open_trades=found.max_open_trades,
            max_exposure_per_symbol=found.max_exposure_per_symbol,
            max_total_exposure=found.max_total_exposure,
            entry_window_start=found.entry_window_start,
            entry_window_end=found.entry_window_end,
        )

    def positions(self, connection: Connection, user_broker_id: int) -> list[Position]:
        """Approved/placed entries not yet filled, and filled entries whose trade is live.

        Counting approved intents matters: two signals qualified back to back
        must see each other before either trade exists.
        """
        query = (
            select(
                TradeIntent.symbol,
                TradeIntent.quantity,
                TradeIntent.entry_price,
                Trade.quantity.label("trade_quantity"),
                Trade.entry_price.label("trade_price"),
            )
            .join(Trade, Trade.trade_intent_id == TradeIntent.id, isouter=True)
            .where(
                TradeIntent.user_broker_id == user_broker_id,
                or_(
                    TradeIntent.status.in_(_LIVE_INTENT),
                    and_(
                        TradeIntent.status == TradeIntentStatus.FILLED,
                        Trade.status.in_(_LIVE_TRADE),
                    ),
                ),
            )
        )
        positions = []
        for (
            symbol,
            planned_quantity,
            planned_price,
            filled_quantity,
            fill_price,
        ) in connection.execute(query):
            quantity = planned_quantity if filled_quantity is None else filled_quantity
            price = planned_price if fill_price is None else fill_price
            positions.append(Position(symbol, quantity, price * quantity))
        return positions
