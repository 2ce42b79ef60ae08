"""Reference data: instruments, user-brokers and subscriptions; a port the host can replace."""

from signal_mgmt.reference.admin import InstrumentSpec, ReferenceAdmin, UserBrokerSpec
from signal_mgmt.reference.port import ReferenceData
from signal_mgmt.reference.tables import TableReferenceData
from signal_mgmt.reference.types import Account, InstrumentInfo, Position, to_tick

__all__ = [
    "Account",
    "InstrumentInfo",
    "InstrumentSpec",
    "Position",
    "ReferenceAdmin",
    "ReferenceData",
    "TableReferenceData",
    "UserBrokerSpec",
    "to_tick",
]
