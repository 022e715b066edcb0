"""Alpaca options through the real alpaca-py clients against the fake: OCC symbols, contracts,
chains, spread orders (mleg), unclear submits, positions, expiry and assignment, time limits."""

from __future__ import annotations

import functools
import math
import time
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from framework.data.calendars import xnys_sessions
from framework.errors import BrokerError, ConfigError, DataError
from framework.options.legs import Leg, OptionPosition
from live.alpaca_options import (
    AlpacaOptions,
    OccContract,
    occ_symbol,
    parse_occ,
    spread_client_id,
)
from live.broker import DuplicateOrderError
from tests.live.alpaca_helpers import VirtualTime, connection
from tests.live.fake_alpaca import FakeAlpaca
from tests.live.fake_alpaca.options import OptionsSpec

pytestmark = pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated")

MONDAY = "2025-06-02 15:00Z"  # in the session (open 13:30 UTC)
FRONT, BACK = date(2025, 6, 20), date(2025, 7, 18)
STRIKES = tuple(float(k) for k in range(470, 531, 5))
SPEC = OptionsSpec(expiries=(FRONT, BACK), strikes=STRIKES)
AFTER_EXPIRY = "2025-06-20 21:00Z"  # the 20 June close is 20:00 UTC


@functools.cache
def _sessions() -> pd.DatetimeIndex:
    days = xnys_sessions()[0]
    return days[(days >= "2025-05-01") & (days <= "2025-07-31")]


def spy_frame(expiry_close: float = 492.0) -> pd.DataFrame:
    """Daily SPY bars at 500 that close at ``expiry_close`` from the front expiry on."""
    days = _sessions()
    close = np.where(days >= pd.Timestamp(FRONT), expiry_close, 500.0)
    index = pd.DatetimeIndex(days).tz_localize("America/New_York").tz_convert("UTC")
    return pd.DataFrame({"open": close, "high": close + 1.0, "low": close - 1.0,
                         "close": close, "volume": 1e6}, index=index)


@pytest.fixture
def fake():
    with FakeAlpaca({"SPY": spy_frame()}, start=MONDAY, options=SPEC) as server:
        yield server


def options_for(fake, **spec) -> AlpacaOptions:
    return AlpacaOptions(connection(fake, **spec))


def bull_put(short: float = 495.0, long: float = 485.0, qty: int = 1,
             expiry: date = FRONT) -> OptionPosition:
    return OptionPosition("SPY", (Leg("P", short, expiry, -qty, 0.0),
                                  Leg("P", long, expiry, qty, 0.0)))


def _count(fake, method: str, prefix: str) -> int:
    return sum(r["method"] == method and r["path"].startswith(prefix) for r in fake.requests)


# -- OCC symbols --------------------------------------------------------------------------------
def test_occ_symbol_examples_and_parse():
    assert occ_symbol("SPY", date(2026, 6, 5), "P", 690) == "SPY260605P00690000"
    assert occ_symbol("spy", "2026-06-05", "call", 512.5) == "SPY260605C00512500"
    assert parse_occ("SPY260605P00690000") == OccContract("SPY", date(2026, 6, 5), "P", 690.0)
    assert parse_occ("AAPL240119C00100000").symbol == "AAPL240119C00100000"


@pytest.mark.parametrize("symbol", ["SPY", "SPY260605X00690000", "SPY261305P00690000",
                                    "SPY260605P0069000", "TOOLONGX260605P00690000"])
def test_parse_occ_rejects_what_is_not_an_occ_symbol(symbol):
    with pytest.raises(DataError, match="OCC option symbol"):
        parse_occ(symbol)


@pytest.mark.parametrize(("args", "match"), [
    (("SPY", "2026-06-05", "X", 690), "right"),
    (("SPY", "2026-06-05", "P", 690.0005), "multiple of 0.001"),
    (("SPY", "2026-06-05", "P", -1), "> 0"),
    (("9X", "2026-06-05", "P", 690), "root"),
    (("SPY", "next friday", "P", 690), "not a date"),
])
def test_occ_symbol_names_the_bad_part(args, match):
    with pytest.raises(ConfigError, match=match):
        occ_symbol(*args)


@given(root=st.from_regex(r"[A-Z][A-Z0-9]{0,5}", fullmatch=True),
       day=st.dates(date(2000, 1, 1), date(2099, 12, 31)), right=st.sampled_from("CP"),
       thousandths=st.integers(1, 99_999_999))
def test_occ_round_trip(root, day, right, thousandths):
    contract = OccContract(root, day, right, thousandths / 1000.0)
    assert parse_occ(contract.symbol) == contract
    assert len(contract.symbol) == len(root) + 15


def test_spread_client_id_is_deterministic():
    a = spread_client_id("r1", bull_put())
    assert a == spread_client_id("r1", bull_put()) and a.startswith("r1:")
    assert a != spread_client_id("r1", bull_put(), tag="2025-06-03")
    assert a != spread_client_id("r1", bull_put(short=500.0))


# -- contracts and chains -------------------------------------------------------------------
def test_contracts_page_through_every_listed_contract(fake):
    with FakeAlpaca({"SPY": spy_frame()}, start=MONDAY,
                    options=OptionsSpec(expiries=(FRONT, BACK), strikes=STRIKES,
                                        contracts_page_max=7)) as small_pages:
        listed = options_for(small_pages).contracts("SPY")
        pages = _count(small_pages, "GET", "/v2/options/contracts")
    assert len(listed) == 2 * 2 * len(STRIKES) == len({c.symbol for c in listed})
    assert pages == math.ceil(len(listed) / 7)
    first = listed[0]
    assert (first.underlying, first.multiplier, first.style, first.tradable) == (
        "SPY", 100, "american", True)
    assert parse_occ(first.symbol) == OccContract("SPY", first.expiry, first.right, first.strike)


def test_contract_filters_reach_the_server(fake):
    puts = options_for(fake).contracts("SPY", expiry_to=FRONT, right="put", strike_min=485,
                                       strike_max=495)
    assert [(c.right, c.strike, c.expiry) for c in puts] == [
        ("P", 485.0, FRONT), ("P", 490.0, FRONT), ("P", 495.0, FRONT)]
    assert options_for(fake).contracts("QQQ") == []  # not an underlying the fake lists


def test_chain_round_trip_quotes_greeks_and_delta_selection(fake):
    with FakeAlpaca({"SPY": spy_frame()}, start=MONDAY,
                    options=OptionsSpec(expiries=(FRONT, BACK), strikes=STRIKES,
                                        snapshot_page_max=10)) as small_pages:
        chain = options_for(small_pages).chain("SPY")
        pages = _count(small_pages, "GET", "/v1beta1/options/snapshots/SPY")
        book = small_pages.options
        quotes = dict(zip([c.symbol for c in book.listing("SPY")],
                          book.quotes(list(book.listing("SPY"))), strict=True))
    assert len(chain) == 52 and pages == math.ceil(52 / 10)
    assert chain.underlying == "SPY" and chain.spot == 500.0
    assert chain.snapshot == pd.Timestamp(MONDAY)
    assert chain.expiries() == [FRONT, BACK]
    for row in chain.frame.itertuples():
        assert (row.bid, row.ask) == (quotes[row.contract].bid, quotes[row.contract].ask)
        assert 0 < row.bid < row.ask
    greeks = chain.with_greeks(rate=0.04, div=0.012)
    put = greeks.select_by_delta("P", 0.30, FRONT)
    call = greeks.select_by_delta("C", 0.30, FRONT)
    assert put["strike"] < 500.0 < call["strike"]
    assert abs(abs(put["delta"]) - 0.30) < 0.1 and abs(call["delta"] - 0.30) < 0.1
    near = greeks.frame[(greeks.frame["strike"] - 500).abs() <= 10]
    # mid-quote IVs recover the fake's surface vol to within the spread
    assert np.allclose(near["model_iv"], near["iv"], atol=0.01)


def test_chain_filters_and_missing_underlying(fake):
    options = options_for(fake)
    calls = options.chain("SPY", expiry_from=BACK, right="C", strike_min=500)
    assert set(calls.frame["right"]) == {"C"} and calls.expiries() == [BACK]
    assert calls.frame["strike"].min() == 500.0
    with pytest.raises(DataError, match="no option snapshots for QQQ"):
        options.chain("QQQ")


# -- spread orders --------------------------------------------------------------------------
def test_bull_put_is_one_mleg_order_filled_at_the_quotes(fake):
    options = options_for(fake)
    book = fake.options
    short_q, long_q = book.quotes([book.contract("SPY250620P00495000"),
                                   book.contract("SPY250620P00485000")])
    cash = fake.cash
    cid = spread_client_id("r1", bull_put())
    accepted = options.submit_spread(bull_put(), cid)
    assert accepted.client_order_id == cid and accepted.quantity == 1.0
    sent = fake.options.orders()
    assert len(sent) == 1 and sent[0]["order_class"] == "mleg"
    assert [(leg["symbol"], leg["side"], leg["ratio_qty"], leg["position_intent"])
            for leg in sent[0]["legs"]] == [
        ("SPY250620P00495000", "sell", "1", "sell_to_open"),
        ("SPY250620P00485000", "buy", "1", "buy_to_open")]
    order = options.order(cid)
    assert order.status == "filled" and order.filled_quantity == 1.0
    credit = short_q.bid - long_q.ask
    assert order.net_price == pytest.approx(-credit)  # a credit is negative
    assert fake.cash == pytest.approx(cash + credit * 100)
    (group,) = options.positions()
    assert (group.underlying, group.expiry) == ("SPY", FRONT)
    assert {(h.contract.strike, h.quantity) for h in group.legs} == {(495.0, -1), (485.0, 1)}
    position = group.position()
    assert position.is_defined_risk and position.net_premium == pytest.approx(credit * 100)


def test_limit_credit_waits_until_cancelled_and_a_marketable_one_fills(fake):
    options = options_for(fake)
    greedy = options.submit_spread(bull_put(), "r1:greedy", limit_price=-9.0)
    assert options.order("r1:greedy").status == "new" and greedy.limit_price == -9.0
    from alpaca.trading.requests import GetOrdersRequest

    listed = options.conn.trading.get_orders(GetOrdersRequest(status="open"))
    assert [(o.client_order_id, o.order_class.value, len(o.legs)) for o in listed] == [
        ("r1:greedy", "mleg", 2)]
    assert options.cancel("r1:greedy").status == "canceled"
    fair = options.submit_spread(bull_put(), "r1:fair", limit_price=-1.0)
    assert fair.limit_price == -1.0 and options.order("r1:fair").status == "filled"


def test_single_leg_is_a_simple_order_and_its_limit_sign_is_checked(fake):
    options = options_for(fake)
    call = OptionPosition("SPY", (Leg("C", 510, BACK, 2, 0.0),))
    with pytest.raises(ConfigError, match="contradicts the single leg"):
        options.submit_spread(call, "r1:c", limit_price=-5.0)
    options.submit_spread(call, "r1:c")
    (sent,) = fake.options.orders()
    assert sent["order_class"] == "simple" and sent["symbol"] == "SPY250718C00510000"
    assert options.order("r1:c").legs[0].filled_quantity == 2.0
    assert fake.options.position_qty() == {"SPY250718C00510000": 2.0}


@pytest.mark.parametrize(("position", "match"), [
    (OptionPosition("SPY", (Leg("P", 495, FRONT, -1, 0.0),), stock_shares=100,
                    stock_price=500.0), "shares"),
    (OptionPosition("SPY", tuple(Leg("P", k, FRONT, 1, 0.0) for k in (480, 485, 490, 495, 500))),
     "1 to 4"),
    (OptionPosition("", (Leg("P", 495, FRONT, -1, 0.0),)), "no underlying"),
])
def test_positions_one_order_cannot_take_are_refused_before_sending(fake, position, match):
    with pytest.raises(ConfigError, match=match):
        options_for(fake).submit_spread(position, "r1:x")
    assert _count(fake, "POST", "/v2/orders") == 0


def test_ratio_spread_sends_the_gcd_as_quantity(fake):
    options = options_for(fake)
    ratio = OptionPosition("SPY", (Leg("P", 490, FRONT, 2, 0.0), Leg("P", 480, FRONT, -4, 0.0)))
    order = options.submit_spread(ratio, "r1:ratio")
    assert order.quantity == 2.0 and [leg.ratio for leg in order.legs] == [1, 2]
    assert fake.options.position_qty() == {"SPY250620P00490000": 2.0, "SPY250620P00480000": -4.0}


# -- unclear outcomes and faults -----------------------------------------------------------
@pytest.mark.parametrize("fault", [504, "drop"])
def test_accepted_then_failed_submit_is_resolved_by_client_id(fake, fault):
    options = options_for(fake)
    fake.faults.accept_then_fail = fault
    cid = spread_client_id("r1", bull_put())
    order = options.submit_spread(bull_put(), cid)
    assert order.client_order_id == cid and order.status == "filled"
    assert len(fake.options.orders()) == 1 and _count(fake, "POST", "/v2/orders") == 1


def test_a_submit_that_never_arrived_is_sent_again_after_the_lookup(fake):
    options = options_for(fake)
    fake.faults.fail_next, fake.faults.fail_paths = [503], "/v2/orders"
    order = options.submit_spread(bull_put(), "r1:n")
    assert order.status == "new" and options.order("r1:n").status == "filled"
    assert len(fake.options.orders()) == 1
    assert _count(fake, "POST", "/v2/orders") == 2  # the first never reached the book


def test_a_known_client_id_is_a_duplicate_even_across_stock_orders(fake):
    options = options_for(fake)
    options.submit_spread(bull_put(), "r1:d")
    with pytest.raises(DuplicateOrderError, match="already has option order"):
        options.submit_spread(bull_put(), "r1:d")
    from live.alpaca import AlpacaBroker
    from live.broker import OrderRequest

    with pytest.raises(DuplicateOrderError):
        AlpacaBroker(("SPY",), options.conn).submit(OrderRequest("r1:d", "SPY", 1.0))
    assert len(fake.options.orders()) == 1 and fake.orders() == []


def test_partial_fills_move_every_leg_together(fake):
    options = options_for(fake)
    fake.faults.partial_fills = [0.5, 0.5]
    options.submit_spread(bull_put(qty=2), "r1:p")
    half = options.order("r1:p")
    assert half.status == "partially_filled" and half.filled_quantity == 1.0
    assert [leg.filled_quantity for leg in half.legs] == [1.0, 1.0]
    fake.clock.advance("5min")
    done = options.order("r1:p")
    assert done.status == "filled" and [leg.filled_quantity for leg in done.legs] == [2.0, 2.0]


def test_forced_rejection_and_definitive_errors(fake):
    options = options_for(fake)
    fake.faults.force_outcome = "rejected"
    assert options.submit_spread(bull_put(), "r1:r").status == "rejected"
    with pytest.raises(BrokerError, match="HTTP 422 .*not a listed option contract"):
        options.submit_spread(bull_put(short=497.0, long=487.0), "r1:unlisted")
    close = OptionPosition("SPY", (Leg("C", 510, BACK, 1, 0.0),))
    with pytest.raises(BrokerError, match="HTTP 403 .*insufficient qty"):
        options.submit_spread(close, "r1:close", intent="close")


def test_order_sent_while_closed_waits_for_the_open(fake):
    fake.clock.set("2025-06-02 21:00Z")
    options = options_for(fake)
    options.submit_spread(bull_put(), "r1:night")
    assert options.order("r1:night").status == "new"
    fake.clock.set("2025-06-03 14:00Z")
    assert options.order("r1:night").status == "filled"


# -- expiry -------------------------------------------------------------------------------------
def test_expiry_with_the_short_leg_itm_assigns_it_and_expires_the_long(fake):
    options = options_for(fake)
    options.submit_spread(bull_put(), "r1:e")  # 495/485 puts; SPY settles at 492
    assert options.expiry_events() == []
    cash = fake.cash
    fake.clock.set(AFTER_EXPIRY)
    events = options.expiry_events()
    by_kind = {e.kind: e for e in events}
    assert sorted(by_kind) == ["assigned", "delivery", "expired"]
    assigned, expired, delivery = by_kind["assigned"], by_kind["expired"], by_kind["delivery"]
    assert assigned.contract == OccContract("SPY", FRONT, "P", 495.0) and assigned.quantity == 1.0
    assert expired.contract.strike == 485.0 and expired.quantity == -1.0
    assert (delivery.symbol, delivery.quantity, delivery.price) == ("SPY", 100.0, 495.0)
    assert delivery.net_amount == -49_500.0 and assigned.day == FRONT
    assert options.positions() == []  # both option legs are gone
    assert fake.positions() == {"SPY": 100.0} and fake.cash == pytest.approx(cash - 49_500.0)
    assert options.expiry_events(since=AFTER_EXPIRY) == []


def test_otm_spread_just_expires(fake):
    options = options_for(fake)
    options.submit_spread(bull_put(short=490.0, long=480.0), "r1:otm")
    fake.clock.set(AFTER_EXPIRY)
    assert [(e.kind, e.quantity) for e in options.expiry_events()] == [
        ("expired", -1.0), ("expired", 1.0)]
    assert options.positions() == [] and fake.positions() == {}


def test_positions_are_grouped_by_expiry(fake):
    options = options_for(fake)
    options.submit_spread(bull_put(), "r1:front")
    options.submit_spread(bull_put(expiry=BACK), "r1:back")
    groups = options.positions()
    assert [(g.expiry, len(g.legs)) for g in groups] == [(FRONT, 2), (BACK, 2)]
    assert all(g.position().front_expiry == g.expiry for g in groups)


# -- limits and timeouts --------------------------------------------------------------------
def test_a_hung_read_times_out_and_is_retried(fake):
    options = options_for(fake, timeout=0.3)
    fake.faults.hang_next, fake.faults.hang_seconds = 1, 5.0
    started = time.monotonic()
    chain = options.chain("SPY")
    assert len(chain) == 52 and time.monotonic() - started < 3.0


def test_a_hung_submit_is_resolved_without_a_duplicate(fake):
    options = options_for(fake, timeout=0.3)
    fake.faults.hang_next, fake.faults.hang_seconds = 1, 2.0
    started = time.monotonic()
    order = options.submit_spread(bull_put(), "r1:h")
    assert order.client_order_id == "r1:h" and time.monotonic() - started < 2.0
    assert len(fake.options.orders()) == 1


def test_option_calls_share_the_connection_rate_limit(fake):
    virtual = VirtualTime()
    options = AlpacaOptions(connection(fake, virtual, max_requests_per_min=3))
    options.chain("SPY")  # snapshots + latest trade
    options.contracts("SPY")
    options.positions()
    assert virtual.slept and sum(virtual.slept) >= 30.0  # the 4th call waited for the window


def test_the_feed_is_checked():
    with pytest.raises(ConfigError, match="option feed"):
        AlpacaOptions(None, keys=("k", "s"), feed="sip")  # type: ignore[arg-type]
