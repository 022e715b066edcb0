"""The broker contract: what the runner relies on, checked against every broker the same way.

Each case runs on the sim broker, on the Alpaca adapter (real alpaca-py against the fake Alpaca
server) and on the Webull adapter (skipped until ``tests.live.webull_helpers`` exists). The
venues and their market controls are in ``tests/live/contract_brokers.py``.
"""

from __future__ import annotations

import math
from collections import defaultdict

import pytest

from live.broker import Broker, DuplicateOrderError, OrderRecord, OrderRequest, UnknownOrderError
from tests.live.contract_brokers import (
    CONTRACT_CASH,
    CONTRACT_START,
    FACTORIES,
    SYMBOL,
    Venue,
    contract_bars,
)

pytestmark = pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated")

PRICE = {"rel": 1e-9, "abs": 1e-6}  # Alpaca sends decimal strings with 9 decimals


@pytest.fixture(params=sorted(FACTORIES))
def venue(request, tmp_path):
    with FACTORIES[request.param](tmp_path, contract_bars(), CONTRACT_START,
                                  CONTRACT_CASH) as made:
        yield made


def _fills_of(venue: Venue, client_order_id: str) -> list:
    return [f for f in venue.broker.fills() if f.client_order_id == client_order_id]


def _same(a: OrderRecord, b: OrderRecord) -> bool:
    """Equal records, NaN average prices included."""
    nan = math.isnan(a.average_price) and math.isnan(b.average_price)
    return (a.client_order_id, a.symbol, a.quantity, a.filled_quantity, a.status) == (
        b.client_order_id, b.symbol, b.quantity, b.filled_quantity, b.status
    ) and (nan or a.average_price == pytest.approx(b.average_price, **PRICE))


def _assert_books_agree(venue: Venue) -> None:
    """Positions are the sum of the fills; cash is the starting cash minus what the fills cost;
    equity is cash plus every position at its mark."""
    broker, fills = venue.broker, venue.broker.fills()
    held: dict[str, float] = defaultdict(float)
    for fill in fills:
        held[fill.symbol] += fill.quantity
    positions = broker.positions()
    for symbol in set(held) | set(positions):
        assert positions.get(symbol, 0.0) == pytest.approx(held[symbol], abs=1e-9), symbol
    spent = sum(f.quantity * f.price + f.commission for f in fills)
    account = broker.account()
    assert account.cash == pytest.approx(venue.cash - spent, rel=1e-9, abs=1e-4)
    marked = sum(q * venue.mark(s) for s, q in positions.items())
    assert account.equity == pytest.approx(account.cash + marked, rel=1e-9, abs=1e-4)


def test_a_fresh_account_is_flat_and_speaks_the_protocol(venue):
    broker = venue.broker
    assert isinstance(broker, Broker) and broker.name == venue.name
    assert dict(broker.positions()) == {} and broker.fills() == [] and broker.open_orders() == []
    account = broker.account()
    assert account.cash == pytest.approx(CONTRACT_CASH) and account.equity == pytest.approx(CONTRACT_CASH)


def test_a_market_buy_fills_at_the_next_open_and_is_reported_once(venue):
    broker = venue.broker
    sent = broker.submit(OrderRequest("c:buy", SYMBOL, 10.0))
    assert (sent.client_order_id, sent.symbol, sent.quantity) == ("c:buy", SYMBOL, 10.0)
    assert sent.status == "new" and sent.is_open and sent.filled_quantity == 0.0
    assert broker.fills() == [] and [o.client_order_id for o in broker.open_orders()] == ["c:buy"]
    venue.advance()
    opening = venue.bar()["open"]
    (fill,) = broker.fills()
    assert (fill.client_order_id, fill.symbol, fill.quantity) == ("c:buy", SYMBOL, 10.0)
    assert fill.price == pytest.approx(opening, **PRICE)
    done = broker.order("c:buy")
    assert done.status == "filled" and not done.is_open and done.filled_quantity == 10.0
    assert done.average_price == pytest.approx(opening, **PRICE)
    assert dict(broker.positions()) == {SYMBOL: 10.0} and broker.open_orders() == []
    venue.advance()
    assert broker.fills() == [fill]  # nothing reported twice
    _assert_books_agree(venue)


def test_sells_and_shorts_are_signed(venue):
    broker = venue.broker
    sent = broker.submit(OrderRequest("c:short", SYMBOL, -3.0))
    assert sent.quantity == -3.0 and sent.filled_quantity == 0.0
    venue.advance()
    (fill,) = broker.fills()
    assert fill.quantity == -3.0 and fill.price == pytest.approx(venue.bar()["open"], **PRICE)
    assert broker.order("c:short").filled_quantity == -3.0
    assert dict(broker.positions()) == {SYMBOL: -3.0}
    _assert_books_agree(venue)
    broker.submit(OrderRequest("c:cover", SYMBOL, 3.0))
    venue.advance()
    assert broker.positions().get(SYMBOL, 0.0) == 0.0
    _assert_books_agree(venue)


def test_cash_positions_and_equity_follow_the_fills(venue):
    broker = venue.broker
    for k, quantity in enumerate((10.0, -4.0, -10.0, 4.0)):  # long, smaller, short, flat
        broker.submit(OrderRequest(f"c:step{k}", SYMBOL, quantity))
        venue.advance()
        _assert_books_agree(venue)
    assert [f.quantity for f in broker.fills()] == [10.0, -4.0, -10.0, 4.0]
    assert broker.positions().get(SYMBOL, 0.0) == 0.0


def test_a_known_client_id_is_a_duplicate_and_nothing_new_is_sent(venue):
    broker = venue.broker
    first = broker.submit(OrderRequest("c:dup", SYMBOL, 2.0))
    before = venue.sent() if venue.sent else None
    with pytest.raises(DuplicateOrderError, match="c:dup"):
        broker.submit(OrderRequest("c:dup", SYMBOL, 5.0))
    if venue.sent:
        assert venue.sent() == before
    assert _same(broker.order("c:dup"), first)
    assert [o.client_order_id for o in broker.open_orders()] == ["c:dup"]
    venue.advance()
    assert [f.quantity for f in _fills_of(venue, "c:dup")] == [2.0]
    assert dict(broker.positions()) == {SYMBOL: 2.0}


def test_unknown_orders_are_none_and_cannot_be_canceled(venue):
    assert venue.broker.order("c:never-sent") is None
    with pytest.raises(UnknownOrderError, match="c:never-sent"):
        venue.broker.cancel("c:never-sent")


def test_cancel_an_open_order_and_a_final_one_is_returned_unchanged(venue):
    broker = venue.broker
    broker.submit(OrderRequest("c:cancel", SYMBOL, 1.0))
    canceled = broker.cancel("c:cancel")
    assert canceled.status == "canceled" and not canceled.is_open
    assert canceled.filled_quantity == 0.0
    assert broker.order("c:cancel").status == "canceled" and broker.open_orders() == []
    assert _same(broker.cancel("c:cancel"), canceled)  # canceling again changes nothing
    broker.submit(OrderRequest("c:filled", SYMBOL, 1.0))
    venue.advance()
    assert _fills_of(venue, "c:cancel") == [] and dict(broker.positions()) == {SYMBOL: 1.0}
    filled = broker.order("c:filled")
    assert filled.status == "filled"
    assert _same(broker.cancel("c:filled"), filled)
    assert _same(broker.order("c:filled"), filled)


def test_open_orders_lists_only_open_ones(venue):
    broker = venue.broker
    broker.submit(OrderRequest("c:first", SYMBOL, 1.0))
    venue.advance()
    broker.submit(OrderRequest("c:gone", SYMBOL, 1.0))
    broker.cancel("c:gone")
    broker.submit(OrderRequest("c:waiting", SYMBOL, 2.0))
    listed = broker.open_orders()
    assert [o.client_order_id for o in listed] == ["c:waiting"]
    assert all(o.is_open and o.quantity == 2.0 for o in listed)
    assert broker.order("c:first").status == "filled"
    assert broker.order("c:gone").status == "canceled"


def test_fills_are_unique_by_execution_id_and_only_grow(venue):
    broker, seen = venue.broker, []
    for k, quantity in enumerate((1.0, 2.0, -3.0)):
        broker.submit(OrderRequest(f"c:f{k}", SYMBOL, quantity))
        venue.advance()
        now = broker.fills()
        assert now[: len(seen)] == seen  # earlier fills never change or vanish
        assert broker.fills() == now  # reading again adds nothing
        seen = now
    assert len(seen) == 3 and len({f.execution_id for f in seen}) == 3
    assert [f.client_order_id for f in seen] == ["c:f0", "c:f1", "c:f2"]


def _assert_partial_sums(venue: Venue, client_order_id: str) -> OrderRecord:
    record, fills = venue.broker.order(client_order_id), _fills_of(venue, client_order_id)
    filled = sum(f.quantity for f in fills)
    assert record.filled_quantity == pytest.approx(filled, abs=1e-9)
    value = sum(f.quantity * f.price for f in fills)
    assert record.average_price == pytest.approx(value / filled, **PRICE)
    return record


def test_partial_fills_add_up_to_the_filled_quantity(venue):
    if venue.split is None:
        pytest.skip(f"{venue.name}: the test market cannot force a partial fill")
    broker = venue.broker
    venue.split(OrderRequest("c:part", SYMBOL, 10.0), 0.4)
    venue.advance()
    record = _assert_partial_sums(venue, "c:part")
    assert record.filled_quantity == pytest.approx(4.0)
    # the rest either keeps working (sim) or ends with the DAY order (Alpaca)
    assert record.status in ("partially_filled", "canceled")
    assert (record.status == "partially_filled") == any(
        o.client_order_id == "c:part" for o in broker.open_orders())
    venue.advance()
    record = _assert_partial_sums(venue, "c:part")
    assert 4.0 - 1e-9 <= record.filled_quantity <= 10.0 + 1e-9
    _assert_books_agree(venue)


def test_stop_orders_rest_until_the_price_crosses_them(venue):
    if not venue.stops:
        pytest.skip(f"{venue.name}: the adapter does not take stop orders")
    broker = venue.broker
    broker.submit(OrderRequest("c:long", SYMBOL, 10.0))
    venue.advance()
    # whole dollars: no cent rounding can move the level
    far = math.floor(venue.bar(1)["low"]) - 5.0
    resting = broker.submit(OrderRequest("c:stop-far", SYMBOL, -10.0, stop_price=far))
    assert resting.is_open and resting.quantity == -10.0 and resting.filled_quantity == 0.0
    assert "c:stop-far" in [o.client_order_id for o in broker.open_orders()]
    venue.advance()  # the low stays above the level: nothing happens
    assert _fills_of(venue, "c:stop-far") == [] and dict(broker.positions()) == {SYMBOL: 10.0}
    if broker.order("c:stop-far").is_open:  # a DAY stop (Alpaca) has expired by now
        broker.cancel("c:stop-far")
    nxt = venue.bar(1)
    assert nxt["low"] + 1.0 < nxt["open"]  # the seeded session dips below its open
    level = float(math.floor((nxt["low"] + nxt["open"]) / 2.0))
    broker.submit(OrderRequest("c:stop", SYMBOL, -10.0, stop_price=level))
    venue.advance()
    (fill,) = _fills_of(venue, "c:stop")
    assert fill.quantity == -10.0 and fill.price == pytest.approx(level, **PRICE)
    stopped = broker.order("c:stop")
    assert stopped.status == "filled" and stopped.filled_quantity == -10.0
    assert broker.positions().get(SYMBOL, 0.0) == 0.0
    _assert_books_agree(venue)
