"""Broker factories for the shared contract suite (``tests/live/test_broker_contract.py``).

A :class:`Venue` is a broker plus the market it trades in: the contract submits orders through
the :class:`~live.broker.Broker` protocol and moves the market one session at a time with
:meth:`Venue.advance`. Every factory is a context manager
``factory(tmp_path, bars, start, cash) -> Venue`` over the same seeded daily bars, so one
expectation fits all brokers:

* before the first :meth:`Venue.advance` the market stands after the close of the last session
  at or before ``start``;
* :meth:`Venue.advance` moves it past the close of the next session: market orders sent before
  fill at that session's open, and positions are then marked at its close;
* costs are zero (Alpaca charges no commission; the sim runs with ``CostSpec.none()``), so a
  market fill is priced at the bar's open exactly.

The webull factory wraps ``tests.live.webull_helpers.webull_contract_broker`` (built by another
change); while that module is missing the webull venue is skipped with the reason
:data:`WEBULL_MISSING`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from framework.costs import CostSpec
from framework.types import Bars
from live.broker import Broker, OrderRecord, OrderRequest
from live.feeds import ClosedBar
from live.sim import SimBroker, SimSpec
from tests.live.alpaca_helpers import broker_for, fake_for, spy_bars

CONTRACT_START = "2016-01-04 21:30Z"  # a Monday, after the close: the next session is Tuesday's
CONTRACT_CASH = 100_000.0
SYMBOL = "SPY"
WEBULL_MISSING = "webull adapter not built yet"
# the sim's participation cap: real volumes never reach it; a forced partial fill shrinks the
# next bar's volume so that the cap cuts the order where the contract asks
_SIM_PARTICIPATION = 0.5
_AFTER_CLOSE = pd.Timedelta(minutes=30)


@functools.cache
def contract_bars() -> Bars:
    """Daily SPY bars around :data:`CONTRACT_START` (small, so every fake starts fast)."""
    return spy_bars("2015-12-01", "2016-02-29")


@dataclass
class Venue:
    """A broker and the controls of its market, as the contract sees them.

    Attributes
    ----------
    name : str
        The factory's name (``"sim"``, ``"alpaca"``, ``"webull"``).
    broker : Broker
    bars : Bars
        The seeded bars (close-labelled) the market replays.
    cash : float
        Starting cash.
    session : int
        Row of ``bars`` of the last session the market has closed.
    step : callable
        ``step(row)`` makes the session at ``row`` of ``bars`` happen (open, then close).
    split : callable, optional
        ``split(order, fraction)`` submits ``order`` so that its first fill covers only
        ``fraction`` of it; None when the broker cannot be forced to fill partially.
    sent : callable, optional
        Number of orders the broker side has ever received; None when it cannot be observed.
    stops : bool
        Whether the broker takes stop orders (``OrderRequest.is_stop``).
    """

    name: str
    broker: Broker
    bars: Bars
    cash: float
    session: int
    step: Callable[[int], None]
    split: Callable[[OrderRequest, float], OrderRecord] | None = None
    sent: Callable[[], int] | None = None
    stops: bool = True

    def advance(self) -> None:
        """Let the next session happen: open fills, then the close marks positions."""
        if self.session + 1 >= len(self.bars.index):
            raise IndexError(f"{self.name}: the seeded bars end at {self.bars.index[-1]}")
        self.session += 1
        self.step(self.session)

    def bar(self, ahead: int = 0, symbol: str = SYMBOL) -> dict[str, float]:
        """Open, high, low and close of the session ``ahead`` sessions after the current one."""
        row, column = self.session + ahead, self.bars.symbols.index(symbol)
        return {name: float(getattr(self.bars, name)[row, column])
                for name in ("open", "high", "low", "close")}

    def mark(self, symbol: str = SYMBOL) -> float:
        """The price positions are valued at: the close of the current session."""
        return self.bar(0, symbol)["close"]


def _start_row(bars: Bars, start: str | pd.Timestamp) -> int:
    """Row of the last session closed at ``start``."""
    row = int(np.searchsorted(bars.index, pd.Timestamp(start), side="right")) - 1
    if row < 0:
        raise ValueError(f"start {start} lies before the first bar {bars.index[0]}")
    return row


def _closed_bar(bars: Bars, row: int, volume: float | None = None) -> ClosedBar:
    pick = lambda name: np.asarray(getattr(bars, name)[row], np.float64).copy()  # noqa: E731
    volumes = pick("volume") if volume is None else np.full(len(bars.symbols), float(volume))
    return ClosedBar(pd.Timestamp(bars.index[row]), tuple(bars.symbols), pick("open"),
                     pick("high"), pick("low"), pick("close"), volumes)


@contextmanager
def sim_venue(tmp_path: Path, bars: Bars, start: str | pd.Timestamp,
              cash: float) -> Iterator[Venue]:
    """The simulated broker, fed the seeded bars one by one."""
    costs = CostSpec.none().with_overrides({"max_participation": _SIM_PARTICIPATION})
    broker = SimBroker(bars.symbols, SimSpec(initial_cash=cash, costs=costs), id_prefix="contract")
    row = _start_row(bars, start)
    broker.on_bar(_closed_bar(bars, row))  # the market so far: marks are known
    thin: dict[str, float] = {}  # volume of the next bar when a partial fill was asked for

    def step(row: int) -> None:
        broker.on_bar(_closed_bar(bars, row, thin.pop("volume", None)))

    def split(order: OrderRequest, fraction: float) -> OrderRecord:
        record = broker.submit(order)
        thin["volume"] = fraction * abs(order.quantity) / _SIM_PARTICIPATION
        return record

    yield Venue("sim", broker, bars, cash, row, step, split,
                sent=lambda: len(broker.orders), stops=True)


@contextmanager
def alpaca_venue(tmp_path: Path, bars: Bars, start: str | pd.Timestamp,
                 cash: float) -> Iterator[Venue]:
    """The Alpaca adapter through the real alpaca-py client against the fake Alpaca server."""
    with fake_for(bars, start, cash) as fake:
        broker = broker_for(fake, bars.symbols)

        def step(row: int) -> None:
            fake.clock.set(max(fake.clock.now(), bars.index[row] + _AFTER_CLOSE))

        def split(order: OrderRequest, fraction: float) -> OrderRecord:
            fake.faults.partial_fills = [fraction, 1.0 - fraction]
            try:
                return broker.submit(order)
            finally:
                fake.faults.partial_fills = None  # only this order fills in parts

        yield Venue("alpaca", broker, bars, cash, _start_row(bars, start), step, split,
                    sent=lambda: len(fake.orders()), stops=True)


@contextmanager
def webull_venue(tmp_path: Path, bars: Bars, start: str | pd.Timestamp,
                 cash: float) -> Iterator[Venue]:
    """The Webull adapter against its fake server (``tests.live.webull_helpers``).

    ``webull_contract_broker(tmp_path, bars, start, cash)`` may yield ``(broker, advance)``,
    ``(broker, advance, fake)`` or an object with ``broker`` and ``advance`` (and optionally
    ``fake``) attributes; ``advance()`` must move the fake past the next session's close. A fake
    with ``faults.partial_fills`` (like the fake Alpaca) enables the partial-fill case; a broker
    or helper with ``supports_stops = True`` enables the stop case.
    """
    try:
        from tests.live.webull_helpers import webull_contract_broker
    except ModuleNotFoundError as exc:
        if exc.name not in ("tests.live.webull_helpers", "live.webull"):
            raise  # the helper exists but is broken: fail loudly, never skip silently
        pytest.skip(WEBULL_MISSING)
    with webull_contract_broker(tmp_path, bars, start, cash) as made:
        broker, advance, fake = _unpack(made)
        faults = getattr(fake, "faults", None)
        split = None
        if faults is not None and hasattr(faults, "partial_fills"):
            def split(order: OrderRequest, fraction: float) -> OrderRecord:
                faults.partial_fills = [fraction, 1.0 - fraction]
                try:
                    return broker.submit(order)
                finally:
                    faults.partial_fills = None
        orders = getattr(fake, "orders", None)
        stops = bool(getattr(made, "supports_stops", getattr(broker, "supports_stops", True)))
        yield Venue("webull", broker, bars, cash, _start_row(bars, start),
                    lambda _row: advance(), split,
                    sent=(lambda: len(orders())) if callable(orders) else None, stops=stops)


def _unpack(made: object) -> tuple[Broker, Callable[[], None], object]:
    if isinstance(made, tuple | list):
        broker, advance = made[0], made[1]
        return broker, advance, (made[2] if len(made) > 2 else None)
    return made.broker, made.advance, getattr(made, "fake", None)  # type: ignore[attr-defined]


FACTORIES = {"sim": sim_venue, "alpaca": alpaca_venue, "webull": webull_venue}
