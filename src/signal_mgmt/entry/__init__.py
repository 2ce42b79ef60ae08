"""The ENTRY path: SignalCandidate -> SignalService -> deliveries, routed by EntryCoordinator."""

from signal_mgmt.entry.candidate import SignalCandidate
from signal_mgmt.entry.coordinator import EntryCoordinator, EntryOutcome, ReplayReport
from signal_mgmt.entry.service import PublishResult, SignalService

__all__ = [
    "EntryCoordinator",
    "EntryOutcome",
    "PublishResult",
    "ReplayReport",
    "SignalCandidate",
    "SignalService",
]
