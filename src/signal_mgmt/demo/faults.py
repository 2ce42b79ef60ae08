"""Faults on purpose: a broker outage window, scripted rejections and unknown outcomes,
and the moment the services restart. All drawn from the seed, so a run repeats."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time

from signal_mgmt.execution.broker import (
    BrokerOrder,
    OrderRequest,
    OutcomeUnknown,
    PlaceResult,
    Rejected,
)
from signal_mgmt.execution.simulated import SimulatedBroker
from signal_mgmt.market.calendar import ExchangeCalendar
from signal_mgmt.market.clock import Clock


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """When things go wrong during the day (aware UTC instants)."""

    outage_start: datetime
    outage_noticed: datetime
    """The host's connectivity monitor marks the user-brokers disconnected: from here
    on qualification rejects instead of orders failing at the broker."""
    outage_end: datetime
    restart_at: datetime
    rejection_rate: float = 0.05
    unknown_outcome_rate: float = 0.05

    @classmethod
    def for_day(cls, calendar: ExchangeCalendar, day: date) -> FaultPlan:
        return cls(
            outage_start=calendar.at_local(day, time(10, 40)),
            outage_noticed=calendar.at_local(day, time(10, 43)),
            outage_end=calendar.at_local(day, time(11, 0)),
            restart_at=calendar.at_local(day, time(11, 5)),
        )

    def broker_down(self, at: datetime) -> bool:
        return self.outage_start <= at < self.outage_end

    def marked_down(self, at: datetime) -> bool:
        return self.outage_noticed <= at < self.outage_end


@dataclass(slots=True)
class FaultCounts:
    rejections: int = 0
    unknown_outcomes: int = 0


class FaultyBroker:
    """A ``BrokerGateway`` in front of the SimulatedBroker that fails some placements.

    Each placement draws from the seed: a definite rejection (the order never
    exists), or a timeout whose order did or did not reach the broker; the
    library must reconcile the latter by client order id before placing again.
    Faults stop at ``quiet_after`` so that the square-off can finish every trade
    (a real desk would escalate to a human instead).
    """

    def __init__(
        self,
        broker: SimulatedBroker,
        plan: FaultPlan,
        clock: Clock,
        seed: int,
        quiet_after: datetime,
    ) -> None:
        self.broker = broker
        self.plan = plan
        self.clock = clock
        self.quiet_after = quiet_after
        self.counts = FaultCounts()
        self._rng = random.Random(f"{seed}/faults")

    def place(self, request: OrderRequest) -> PlaceResult:
        draw, reached = self._rng.random(), self._rng.random() < 0.5
        if self.clock.now() < self.quiet_after and self.broker.is_connected():
            if draw < self.plan.rejection_rate:
                self.counts.rejections += 1
                return Rejected("DEMO_RISK_REJECTED")
            if draw < self.plan.rejection_rate + self.plan.unknown_outcome_rate:
                self.counts.unknown_outcomes += 1
                if reached:
                    self.broker.place(request)
                return OutcomeUnknown("DEMO_TIMEOUT")
        return self.broker.place(request)

    def cancel(self, client_order_id: str) -> BrokerOrder | None:
        return self.broker.cancel(client_order_id)

    def order_status(self, client_order_id: str) -> BrokerOrder | None:
        return self.broker.order_status(client_order_id)

    def is_connected(self) -> bool:
        return self.broker.is_connected()
