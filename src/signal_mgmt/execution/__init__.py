"""Execution: the BrokerGateway port, the SimulatedBroker, and orders placed with reconcile."""

from signal_mgmt.execution.broker import (
    Accepted,
    BrokerGateway,
    BrokerOrder,
    BrokerUnavailableError,
    OrderRequest,
    OutcomeUnknown,
    PlaceResult,
    Rejected,
)
from signal_mgmt.execution.orders import (
    NewOrder,
    OrderRecord,
    client_order_id,
    place_with_reconcile,
    record_orders,
    refresh_order,
)
from signal_mgmt.execution.simulated import SimulatedBroker

__all__ = [
    "Accepted",
    "BrokerGateway",
    "BrokerOrder",
    "BrokerUnavailableError",
    "NewOrder",
    "OrderRecord",
    "OrderRequest",
    "OutcomeUnknown",
    "PlaceResult",
    "Rejected",
    "SimulatedBroker",
    "client_order_id",
    "place_with_reconcile",
    "record_orders",
    "refresh_order",
]
