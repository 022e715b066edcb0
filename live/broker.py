"""The broker interface the runner talks to, and the records it exchanges.

A broker keeps the account on its side (cash, positions, orders, fills); the runner keeps its
own record in the store and reconciles the two at every start (DESIGN.md section 6: crash-only).
Orders are identified by the runner's deterministic ``client_order_id``, so re-submitting after a
crash is detected (:class:`DuplicateOrderError`) instead of trading twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from framework.errors import BrokerError

# order lifecycle; "new" and "partially_filled" are open
OPEN_STATUSES: tuple[str, ...] = ("new", "partially_filled")
FINAL_STATUSES: tuple[str, ...] = ("filled", "canceled", "rejected")


class DuplicateOrderError(BrokerError):
    """The broker already has an order with this ``client_order_id`` (nothing was sent)."""


class UnknownOrderError(BrokerError):
    """The broker has no order with this ``client_order_id``."""


class BrokerUnavailableError(BrokerError):
    """The broker did not answer usably after every retry (network, timeouts, 5xx, 429)."""


class UnknownOutcomeError(BrokerError):
    """A submit may or may not have reached the broker, and a lookup could not tell yet.

    The order stays pending in the store; the runner looks it up by client id at the next bar
    (or start) and never sends it blindly again."""


@dataclass(frozen=True)
class OrderRequest:
    """A market order for ``quantity`` shares (signed: > 0 buys, < 0 sells) of ``symbol``; with a
    finite ``stop_price``, a resting stop-market order (the risk layer's protective stop)."""

    client_order_id: str
    symbol: str
    quantity: float
    stop_price: float = float("nan")

    @property
    def is_stop(self) -> bool:
        return self.stop_price == self.stop_price  # not NaN


@dataclass(frozen=True)
class OrderRecord:
    """The broker's view of one order."""

    client_order_id: str
    symbol: str
    quantity: float
    filled_quantity: float
    average_price: float
    status: str

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class FillRecord:
    """One execution; ``execution_id`` is unique per broker (fills are deduplicated by it)."""

    execution_id: str
    client_order_id: str
    symbol: str
    quantity: float
    price: float
    commission: float
    time: str
    slippage: float = 0.0
    impact: float = 0.0


@dataclass(frozen=True)
class AccountSnapshot:
    """Cash and equity (cash plus positions at their last marks) in account currency."""

    cash: float
    equity: float


@runtime_checkable
class Broker(Protocol):
    """What the runner needs of a broker (simulated, Alpaca paper, ...)."""

    name: str

    def account(self) -> AccountSnapshot:
        """Current cash and equity."""
        ...

    def positions(self) -> Mapping[str, float]:
        """Shares held per symbol (signed; symbols with no position may be omitted)."""
        ...

    def open_orders(self) -> list[OrderRecord]:
        """Orders not yet final."""
        ...

    def submit(self, order: OrderRequest) -> OrderRecord:
        """Send a market order; raises :class:`DuplicateOrderError` for a known client id."""
        ...

    def cancel(self, client_order_id: str) -> OrderRecord:
        """Cancel what is left of an order (a final order is returned unchanged)."""
        ...

    def order(self, client_order_id: str) -> OrderRecord | None:
        """The order with this client id, or None when the broker never received it."""
        ...

    def fills(self) -> list[FillRecord]:
        """Every execution so far, oldest first."""
        ...


def lookup_after_unclear(broker: Broker, order: OrderRequest, reason: str) -> OrderRecord | None:
    """After a submit whose outcome is unclear (timeout, dropped connection, 5xx): the broker's
    record of ``order`` by client id, or None when it never got it (then it may be sent again).
    A lookup that fails too raises :class:`UnknownOutcomeError`: nothing is resent blindly."""
    try:
        return broker.order(order.client_order_id)
    except BrokerUnavailableError as exc:
        raise UnknownOutcomeError(
            f"{broker.name}: submit of {order.client_order_id!r} ended with {reason} and the "
            f"lookup failed too ({exc}); the order stays pending and is resolved by client id "
            "later.") from exc
