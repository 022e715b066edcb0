"""The simulated broker: next-open fills with the engine's costs, partial fills, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from framework.costs import CostSpec
from framework.errors import BrokerError
from live.broker import Broker, DuplicateOrderError, OrderRequest
from live.feeds import ClosedBar
from live.sim import SimBroker, SimSpec


def _bar(day: int, open_: float, close: float, volume: float = 1e6) -> ClosedBar:
    one = lambda x: np.array([float(x)])  # noqa: E731
    return ClosedBar(pd.Timestamp("2021-01-04 21:00", tz="UTC") + pd.Timedelta(days=day), ("A",),
                     one(open_), one(max(open_, close) * 1.01), one(min(open_, close) * 0.99),
                     one(close), one(volume))


def test_protocol_and_next_open_fill_with_costs():
    costs = CostSpec(commission_per_share=0.01, commission_min=1.0, slippage_bps=10.0, impact_coef=0.0)
    broker = SimBroker(["A"], SimSpec(initial_cash=10_000.0, costs=costs))
    assert isinstance(broker, Broker)
    broker.on_bar(_bar(0, 50.0, 50.0))
    broker.submit(OrderRequest("o1", "A", 100.0))
    assert broker.fills() == []  # nothing fills before the next bar
    broker.on_bar(_bar(1, 52.0, 53.0))
    (fill,) = broker.fills()
    price = 52.0 * (1 + 10 / 1e4)
    assert fill.quantity == 100.0 and fill.price == pytest.approx(price)
    assert fill.commission == pytest.approx(1.0)  # 100 * 0.01 = 1.00: the minimum
    assert broker.account().cash == pytest.approx(10_000.0 - 100 * price - 1.0)
    assert broker.account().equity == pytest.approx(broker.account().cash + 100 * 53.0)
    assert broker.order("o1").status == "filled"


def test_participation_cap_carries_the_rest_over():
    costs = CostSpec.none().with_overrides({"max_participation": 0.1})
    broker = SimBroker(["A"], SimSpec(costs=costs))
    broker.on_bar(_bar(0, 10.0, 10.0))
    broker.submit(OrderRequest("o1", "A", 250.0))
    sizes = []
    for day in (1, 2, 3):
        sizes += [f.quantity for f in broker.on_bar(_bar(day, 10.0, 10.0, volume=1000.0))]
    assert sizes == [100.0, 100.0, 50.0]
    assert broker.order("o1").status == "filled" and broker.positions() == {"A": 250.0}


def test_leverage_rule_cuts_an_unaffordable_buy():
    broker = SimBroker(["A"], SimSpec(initial_cash=1_000.0, costs=CostSpec.none()))
    broker.on_bar(_bar(0, 10.0, 10.0))
    broker.submit(OrderRequest("o1", "A", 200.0))  # 2,000 of stock with 1,000 of cash
    broker.on_bar(_bar(1, 10.0, 10.0))
    assert broker.positions()["A"] == pytest.approx(100.0)
    assert broker.account().cash == pytest.approx(0.0, abs=1e-6)
    assert broker.order("o1").status == "canceled"


def test_duplicates_unknown_symbols_and_replayed_bars():
    broker = SimBroker(["A"])
    broker.on_bar(_bar(0, 10.0, 10.0))
    broker.submit(OrderRequest("o1", "A", 5.0))
    with pytest.raises(DuplicateOrderError, match="o1"):
        broker.submit(OrderRequest("o1", "A", 5.0))
    with pytest.raises(BrokerError, match="unknown symbol 'B'"):
        broker.submit(OrderRequest("o2", "B", 5.0))
    broker.on_bar(_bar(1, 10.0, 10.0))
    assert broker.on_bar(_bar(1, 10.0, 10.0)) == []  # a bar seen twice fills nothing twice
    assert len(broker.fills()) == 1


def test_cancel_and_round_trip_through_dict():
    saved = []
    broker = SimBroker(["A"], persist=saved.append)
    broker.on_bar(_bar(0, 10.0, 10.0))
    broker.submit(OrderRequest("o1", "A", 5.0))
    broker.on_bar(_bar(1, 11.0, 12.0))
    broker.submit(OrderRequest("o2", "A", -2.0))
    assert broker.cancel("o2").status == "canceled"
    again = SimBroker.from_dict(saved[-1])
    assert again.account() == broker.account()
    assert again.positions() == broker.positions()
    assert again.fills() == broker.fills()
    assert again.order("o2").status == "canceled" and again.open_orders() == []
