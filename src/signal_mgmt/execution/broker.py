"""The BrokerGateway port: how the library talks to a broker.

A placement has three outcomes, and the difference matters:

- ``Accepted``: the broker has the order (it may already be filled);
- ``Rejected``: the broker definitely has NO order with this client id
  (a refusal, or an outage before anything was sent: ``transient=True``);
- ``OutcomeUnknown``: the call timed out or broke mid-flight; the order may or
  may not exist. This is NOT a failure: it is settled by asking the broker for
  the client order id before anything is placed again
  (see :func:`signal_mgmt.execution.orders.place_with_reconcile`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from signal_mgmt.errors import SignalMgmtError
from signal_mgmt.models import OrderSide, OrderStatus, OrderType

CLIENT_ORDER_ID_MAX = 20
"""Many Indian brokers cap the client tag/order id near 20 characters."""


class BrokerUnavailableError(SignalMgmtError):
    """The broker cannot be asked right now (disconnected, timed out); nothing is known."""


@dataclass(frozen=True, slots=True)
class OrderRequest:
    client_order_id: str
    symbol: str
    side: OrderSide
    quantity: int
    order_type: OrderType
    limit_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    """What the broker knows about one order."""

    client_order_id: str
    broker_order_id: str
    status: OrderStatus
    quantity: int
    filled_quantity: int = 0
    average_price: Decimal | None = None
    reason: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status in {OrderStatus.FILLED, OrderStatus.REJECTED, OrderStatus.CANCELLED}


@dataclass(frozen=True, slots=True)
class Accepted:
    order: BrokerOrder


@dataclass(frozen=True, slots=True)
class Rejected:
    """The broker has no such order. ``transient``: an outage, placing again may succeed."""

    reason: str
    transient: bool = False


@dataclass(frozen=True, slots=True)
class OutcomeUnknown:
    reason: str


PlaceResult = Accepted | Rejected | OutcomeUnknown


class BrokerGateway(Protocol):
    """Injected by the host; ``SimulatedBroker`` ships with the library.

    ``place`` must not raise for a refusal or a timeout: it returns the outcome.
    ``order_status`` and ``cancel`` return None for a client order id the broker
    never received, and raise ``BrokerUnavailableError`` when they cannot ask.
    ``cancel`` returns the order as it stands once the cancel is handled: CANCELLED
    with whatever had filled, or FILLED when a fill won the race (a final order is
    returned unchanged). After a cancel the library asks for the order's status and
    settles on the fills reported there; it never assumes a cancel succeeded.
    """

    def place(self, request: OrderRequest) -> PlaceResult: ...

    def cancel(self, client_order_id: str) -> BrokerOrder | None: ...

    def order_status(self, client_order_id: str) -> BrokerOrder | None: ...

    def is_connected(self) -> bool: ...


class BrokerConnectivity(Protocol):
    """Whether a user-broker's session is up: what exit qualification (Stage B) reads.

    Called inside the decision's transaction, so it answers from memory (the host
    keeps it current from its broker session's events); it never calls the broker.
    """

    def connected(self, user_broker_id: int) -> bool: ...


@dataclass(frozen=True, slots=True)
class GatewayConnectivity:
    """Every user-broker behind one ``BrokerGateway`` shares its connection state."""

    gateway: BrokerGateway

    def connected(self, user_broker_id: int) -> bool:
        return self.gateway.is_connected()
