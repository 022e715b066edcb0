"""The fake Alpaca server, driven by the REAL alpaca-py clients (REST and both websockets)."""

from __future__ import annotations

import json
import queue
import threading
import time
import warnings
from contextlib import contextmanager

import exchange_calendars as xcals
import msgpack
import numpy as np
import pandas as pd
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from framework.errors import ConfigError, DataError
from tests.live.fake_alpaca import KEY, SECRET, FakeAlpaca, Faults
from tests.live.fake_alpaca.data import stock_bars
from tests.live.fake_alpaca.market import Market
from tests.live.fake_alpaca.trading import Call

pytestmark = [
    # third-party deprecations under pandas 3.1 (exchange_calendars' constructor, alpaca's .df)
    pytest.mark.filterwarnings("ignore:Series.values returning an ndarray"),
    pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.dropna"),
]

with warnings.catch_warnings():
    # alpaca.data.live / alpaca.trading.stream import websockets.legacy, deprecated since 14.
    warnings.filterwarnings("ignore", "websockets.legacy is deprecated", DeprecationWarning)
    from alpaca.common.exceptions import APIError
    from alpaca.data.historical import StockHistoricalDataClient
    from alpaca.data.live import StockDataStream
    from alpaca.data.requests import StockBarsRequest, StockLatestBarRequest
    from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
    from alpaca.trading.client import TradingClient
    from alpaca.trading.requests import (
        ClosePositionRequest,
        GetCalendarRequest,
        GetOrdersRequest,
        LimitOrderRequest,
        MarketOrderRequest,
        ReplaceOrderRequest,
    )
    from alpaca.trading.stream import TradingStream

NY = "America/New_York"
WAIT = 5.0


# --------------------------------------------------------------------------- seeds
def xnys_sessions(first: str, last: str) -> pd.DatetimeIndex:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        calendar = xcals.get_calendar("XNYS", start="2024-01-01", end="2024-12-31")
    return calendar.sessions_in_range(first, last)


def daily_bars(first: str = "2024-06-17", last: str = "2024-07-12", base: float = 100.0):
    """Daily bars at New York midnight; open = base + i, high/low = open +-2, close = open + 1."""
    days = xnys_sessions(first, last)
    index = pd.DatetimeIndex([pd.Timestamp(d).tz_localize(NY) for d in days]).tz_convert("UTC")
    opens = base + np.arange(len(index), dtype=float)
    return pd.DataFrame({"open": opens, "high": opens + 2, "low": opens - 2,
                         "close": opens + 1, "volume": 1000.0}, index=index)


def minute_bars(day: str = "2024-07-01", minutes: int = 390, base: float = 50.0):
    """Minute bars from 09:30 New York; open = base + i/100, close = open + 0.005."""
    start = pd.Timestamp(f"{day} 09:30", tz=NY).tz_convert("UTC")
    index = pd.date_range(start, periods=minutes, freq="1min")
    opens = base + np.arange(minutes) / 100.0
    return pd.DataFrame({"open": opens, "high": opens + 0.02, "low": opens - 0.02,
                         "close": opens + 0.005, "volume": 100.0 + np.arange(minutes)},
                        index=index)


def at(text: str) -> pd.Timestamp:
    """A New York wall time as UTC."""
    return pd.Timestamp(text, tz=NY).tz_convert("UTC")


@pytest.fixture
def daily():
    fake = FakeAlpaca({"SPY": daily_bars(), "QQQ": daily_bars(base=300.0)},
                      start=at("2024-06-18 17:00"))
    with fake:
        yield fake
    assert fake.errors == []


@pytest.fixture
def minute():
    fake = FakeAlpaca({"SPY": minute_bars(), "QQQ": minute_bars(base=80.0)}, timeframe="1Min",
                      start=at("2024-07-01 09:35"))
    with fake:
        yield fake
    assert fake.errors == []


def trading(fake: FakeAlpaca) -> TradingClient:
    client = TradingClient(KEY, SECRET, paper=True, url_override=fake.url)
    client._retry_wait = 0  # the SDK sleeps 3 s between 429/504 retries by default
    return client


def data_client(fake: FakeAlpaca) -> StockHistoricalDataClient:
    client = StockHistoricalDataClient(KEY, SECRET, url_override=fake.url)
    client._retry_wait = 0
    return client


def market(symbol: str, qty: float, side: str = "buy", cid: str | None = None):
    return MarketOrderRequest(symbol=symbol, qty=qty, side=side, time_in_force="day",
                              client_order_id=cid)


# ------------------------------------------------------------- trading REST
def test_account_clock_calendar_and_asset(daily):
    client = trading(daily)
    account = client.get_account()
    assert (account.cash, account.equity, account.buying_power) == ("100000", "100000", "100000")
    assert account.status == "ACTIVE"
    clock = client.get_clock()
    assert clock.is_open is False
    assert clock.next_open == at("2024-06-20 09:30")  # 2024-06-19 is Juneteenth
    assert clock.next_close == at("2024-06-20 16:00")
    daily.clock.set(at("2024-07-03 10:00"))
    assert client.get_clock().is_open is True
    rows = client.get_calendar(GetCalendarRequest(start="2024-07-02", end="2024-07-05"))
    assert [str(r.date) for r in rows] == ["2024-07-02", "2024-07-03", "2024-07-05"]
    assert rows[1].close.hour == 13  # half day before Independence Day
    raw = client.get("/calendar", {"start": "2024-07-03", "end": "2024-07-03"})
    assert raw[0]["open"] == "09:30" and raw[0]["session_open"] == "0400"
    assert client.get_asset("SPY").symbol == "SPY"
    with pytest.raises(APIError) as error:
        client.get_asset("NOPE")
    assert error.value.status_code == 404


def test_market_order_after_close_fills_at_next_session_open(daily):
    client = trading(daily)
    order = client.submit_order(market("SPY", 10, cid="buy-1"))
    assert order.status == "new" and order.client_order_id == "buy-1"
    daily.clock.set(at("2024-06-20 09:29"))
    assert client.get_order_by_id(order.id).status == "new"
    daily.clock.set(at("2024-06-20 09:30"))
    filled = client.get_order_by_client_id("buy-1")
    opening = daily_bars().loc[at("2024-06-20 00:00"), "open"]
    assert filled.status == "filled" and float(filled.filled_avg_price) == opening
    assert filled.filled_at == at("2024-06-20 09:30")
    assert daily.positions() == {"SPY": 10.0}
    assert daily.cash == pytest.approx(100_000 - 10 * opening)
    position = client.get_open_position("SPY")
    assert (position.qty, float(position.avg_entry_price)) == ("10", opening)
    equity = float(client.get_account().equity)
    assert equity == pytest.approx(daily.cash + 10 * opening)  # mark = today's open until close
    daily.clock.set(at("2024-06-20 16:00"))
    assert float(client.get_account().equity) == pytest.approx(daily.cash + 10 * (opening + 1))
    [fill] = daily.fills()
    assert (fill["qty"], fill["price"], fill["client_order_id"]) == (10.0, opening, "buy-1")


def test_minute_order_fills_at_current_minute_open_and_fractional(minute):
    client = trading(minute)
    minute.clock.set(at("2024-07-01 09:36:02"))  # mid-minute: fills at this minute's open
    order = client.submit_order(market("SPY", 0.5))
    done = client.get_order_by_id(order.id)
    assert done.status == "filled" and done.qty == "0.5"
    assert float(done.filled_avg_price) == minute_bars().loc[at("2024-07-01 09:36"), "open"]
    assert len(order.client_order_id) == 36  # generated when absent


def test_partial_fills_forty_then_sixty(minute):
    client = trading(minute)
    minute.faults.partial_fills = [0.4, 0.6]
    minute.clock.set(at("2024-07-01 09:40:30"))
    order = client.submit_order(market("QQQ", 10, cid="part"))
    first = client.get_order_by_id(order.id)
    assert (first.status, first.filled_qty) == ("partially_filled", "4")
    minute.clock.advance("30s")
    second = client.get_order_by_id(order.id)
    seeds = minute_bars(base=80.0)
    prices = [seeds.loc[at("2024-07-01 09:40"), "open"], seeds.loc[at("2024-07-01 09:41"), "open"]]
    assert (second.status, second.filled_qty) == ("filled", "10")
    assert float(second.filled_avg_price) == pytest.approx(0.4 * prices[0] + 0.6 * prices[1])
    assert [(f["qty"], f["price"]) for f in minute.fills()] == [(4.0, prices[0]), (6.0, prices[1])]
    page = client.get("/account/activities/FILL", {"direction": "asc"})
    assert [(a["type"], a["qty"], a["leaves_qty"]) for a in page] == [
        ("partial_fill", "4", "6"), ("fill", "6", "0")]


@pytest.mark.parametrize("outcome", ["rejected", "expired", "canceled"])
def test_forced_outcomes(daily, outcome):
    client = trading(daily)
    daily.faults.force_outcome = outcome
    order = client.submit_order(market("SPY", 1))
    assert daily.faults.force_outcome is None  # consumed by that one order
    daily.clock.set(at("2024-06-20 09:30"))
    final = client.get_order_by_id(order.id)
    assert final.status == outcome and final.filled_qty == "0"
    assert daily.fills() == [] and daily.positions() == {}
    assert client.get_order_by_id(client.submit_order(market("SPY", 1)).id).status == "filled"


def test_limit_order_fills_at_limit_on_cross_and_day_expiry(daily):
    client = trading(daily)
    seeds = daily_bars()
    limit = seeds.loc[at("2024-06-21 00:00"), "high"] - 0.5  # crossed on 06-21, not 06-20
    order = client.submit_order(LimitOrderRequest(symbol="SPY", qty=2, side="sell",
                                                  time_in_force="gtc", limit_price=limit))
    daily.clock.set(at("2024-06-20 16:00"))
    assert client.get_order_by_id(order.id).status == "new"
    daily.clock.set(at("2024-06-21 16:00"))
    done = client.get_order_by_id(order.id)
    assert done.status == "filled" and float(done.filled_avg_price) == limit
    assert daily.positions() == {"SPY": -2.0}
    assert done.filled_at == at("2024-06-21 16:00")
    day = client.submit_order(LimitOrderRequest(symbol="SPY", qty=1, side="buy",
                                                time_in_force="day", limit_price=1.0))
    daily.clock.set(at("2024-06-24 16:00"))
    assert client.get_order_by_id(day.id).status == "expired"


def test_duplicate_client_order_id_cancel_and_replace(daily):
    client = trading(daily)
    first = client.submit_order(market("SPY", 1, cid="dup"))
    with pytest.raises(APIError) as error:
        client.submit_order(market("SPY", 1, cid="dup"))
    assert (error.value.status_code, error.value.code) == (422, 40010001)
    assert error.value.message == "client_order_id must be unique"
    with pytest.raises(APIError) as error:
        client.submit_order(market("SPY", 1, cid="x" * 129))
    assert error.value.status_code == 422
    limit = client.submit_order(LimitOrderRequest(symbol="SPY", qty=3, side="buy",
                                                  time_in_force="gtc", limit_price=1.0))
    replaced = client.replace_order_by_id(limit.id, ReplaceOrderRequest(qty=5, limit_price=2.0))
    assert (str(replaced.replaces), replaced.qty, replaced.limit_price) == (str(limit.id), "5", "2")
    old = client.get_order_by_id(limit.id)
    assert old.status == "replaced" and str(old.replaced_by) == str(replaced.id)
    assert client.cancel_order_by_id(replaced.id) is None
    assert client.get_order_by_id(replaced.id).status == "canceled"
    with pytest.raises(APIError) as error:
        client.cancel_order_by_id(replaced.id)
    assert error.value.status_code == 422
    open_again = client.submit_order(market("QQQ", 1))
    responses = client.cancel_orders()
    assert {str(r.id) for r in responses} == {str(first.id), str(open_again.id)}
    assert all(r.status == 200 for r in responses)
    with pytest.raises(APIError) as error:
        client.get_order_by_client_id("never-sent")
    assert error.value.status_code == 404


def test_buying_power_check(daily):
    client = trading(daily)
    with pytest.raises(APIError) as error:
        client.submit_order(market("QQQ", 1000))
    assert (error.value.status_code, error.value.code) == (403, 40310000)
    assert daily.orders() == []


def test_positions_close_and_shorts(daily):
    client = trading(daily)
    with pytest.raises(APIError) as error:
        client.get_open_position("SPY")
    assert error.value.status_code == 404 and error.value.code == 40410000
    client.submit_order(market("SPY", 10))
    client.submit_order(market("QQQ", 4, side="sell"))  # opens a short
    daily.clock.set(at("2024-06-20 10:00"))
    sides = {p.symbol: (p.side, p.qty) for p in client.get_all_positions()}
    assert sides == {"SPY": ("long", "10"), "QQQ": ("short", "-4")}
    close = client.close_position("SPY", ClosePositionRequest(percentage="50"))
    assert (close.side, close.qty) == ("sell", "5")
    assert daily.positions()["SPY"] == 5.0  # the open bar is live: the market order filled
    with pytest.raises(APIError) as error:
        client.close_position("SPY", ClosePositionRequest(qty="50"))
    assert error.value.status_code == 403
    results = client.close_all_positions(cancel_orders=True)
    assert {r.symbol for r in results} == {"SPY", "QQQ"} and all(r.status == 200 for r in results)
    assert daily.positions() == {}
    assert [r for r in daily.requests if r["path"] == "/v2/positions"][-1]["status"] == 207


def test_order_list_filters(daily):
    client = trading(daily)
    ids = [client.submit_order(market(s, 1, side=side)).id
           for s, side in [("SPY", "buy"), ("QQQ", "buy"), ("SPY", "sell")]]
    daily.clock.set(at("2024-06-20 09:30"))
    late = client.submit_order(LimitOrderRequest(symbol="SPY", qty=1, side="buy",
                                                 time_in_force="gtc", limit_price=1.0))
    assert [o.id for o in client.get_orders()] == [late.id]  # default: open only
    closed = client.get_orders(GetOrdersRequest(status="closed", direction="asc", nested=True))
    assert [o.id for o in closed] == ids
    assert len(client.get_orders(GetOrdersRequest(status="all", limit=2))) == 2
    spy_sells = client.get_orders(GetOrdersRequest(status="all", symbols=["SPY"], side="sell"))
    assert [o.id for o in spy_sells] == [ids[2]]
    after = client.get_orders(GetOrdersRequest(status="all", after=at("2024-06-19 00:00")))
    assert [o.id for o in after] == [late.id]
    assert client.get("/orders", {"nested": "true", "status": "all"})[0]["id"] == str(late.id)
    with pytest.raises(APIError):
        client.get("/orders", {"limit": 501})


def test_activities_paging_by_last_id(daily):
    client = trading(daily)
    for qty in (1, 2, 3):
        client.submit_order(market("SPY", qty))
    daily.clock.set(at("2024-06-20 09:30"))
    seen, token = [], None
    while True:
        params = {"page_size": 2, "direction": "asc", **({"page_token": token} if token else {})}
        page = client.get("/account/activities", {"activity_types": "FILL", **params})
        if not page:
            break
        seen += page
        token = page[-1]["id"]
    assert [a["qty"] for a in seen] == ["1", "2", "3"]
    assert all(a["activity_type"] == "FILL" and "::" in a["id"] for a in seen)
    newest = client.get("/account/activities/FILL")
    assert [a["qty"] for a in newest] == ["3", "2", "1"]  # default direction desc


def test_auth_rate_limit_headers_and_on_request_hook(daily):
    seen = []
    daily.on_request = lambda method, path, query: seen.append((method, path, query))
    bad = TradingClient("wrong", SECRET, paper=True, url_override=daily.url)
    with pytest.raises(APIError) as error:
        bad.get_account()
    assert error.value.status_code == 401
    daily.faults.rate_limit_per_min = 3
    response = requests.get(daily.url + "/v2/clock", timeout=WAIT,
                            headers={"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET})
    assert response.headers["X-RateLimit-Limit"] == "3"
    assert response.headers["X-RateLimit-Remaining"] == "2"
    assert int(response.headers["X-RateLimit-Reset"]) >= int(time.time())
    client = trading(daily)
    client._retry = 0
    client.get_clock()
    client.get_clock()
    with pytest.raises(APIError) as error:
        client.get_clock()
    assert (error.value.status_code, error.value.code) == (429, 42910000)
    assert seen[1] == ("GET", "/v2/clock", {})


def test_storm_429_is_retried_by_the_sdk(daily):
    client = trading(daily)
    daily.faults.storm_429 = 2
    assert client.get_account().cash == "100000"
    assert [r["status"] for r in daily.requests] == [429, 429, 200]


def test_accept_then_504_sdk_retry_hits_duplicate(daily):
    client = trading(daily)
    daily.faults.accept_then_fail = 504
    with pytest.raises(APIError) as error:
        client.submit_order(market("SPY", 1, cid="once"))
    assert (error.value.status_code, error.value.code) == (422, 40010001)
    assert [r["status"] for r in daily.requests] == [504, 422]
    assert [o["client_order_id"] for o in daily.orders()] == ["once"]
    assert client.get_order_by_client_id("once").status == "new"


def test_accept_then_drop_records_the_order(daily):
    client = trading(daily)
    daily.faults.accept_then_fail = "drop"
    with pytest.raises(requests.ConnectionError):
        client.submit_order(market("SPY", 1, cid="dropped"))
    assert daily.requests[-1]["status"] is None
    daily.clock.set(at("2024-06-20 09:30"))
    assert client.get_order_by_client_id("dropped").status == "filled"


def test_fail_next_with_path_filter_and_disappear(daily):
    client = trading(daily)
    daily.faults.fail_next = [503, 503]
    daily.faults.fail_paths = "/v2/orders"
    assert client.get_clock() is not None  # not matching: the list is untouched
    for _ in range(2):
        with pytest.raises(APIError) as error:
            client.get_orders()
        assert error.value.status_code == 503 and error.value.code == 50310000
    assert client.get_orders() == []
    order = client.submit_order(market("SPY", 1, cid="ghost"))
    daily.faults.disappear.add("ghost")
    for lookup in (lambda: client.get_order_by_client_id("ghost"),
                   lambda: client.get_order_by_id(order.id)):
        with pytest.raises(APIError) as error:
            lookup()
        assert error.value.status_code == 404


def test_hang_and_latency_use_wall_clock_without_blocking_others(daily):
    headers = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
    daily.faults.hang_next, daily.faults.hang_seconds = 1, 3.0
    errors = queue.Queue()

    def hung() -> None:
        try:
            requests.get(daily.url + "/v2/account", headers=headers, timeout=0.5)
        except requests.ReadTimeout as exc:
            errors.put(exc)

    thread = threading.Thread(target=hung)
    thread.start()
    time.sleep(0.1)
    started = time.monotonic()
    assert requests.get(daily.url + "/v2/clock", headers=headers, timeout=WAIT).ok
    assert time.monotonic() - started < 0.4
    thread.join(WAIT)
    assert isinstance(errors.get_nowait(), requests.ReadTimeout)
    daily.faults.latency = 0.2
    started = time.monotonic()
    trading(daily).get_clock()
    assert time.monotonic() - started >= 0.2


def test_clock_and_seed_validation():
    with pytest.raises(DataError, match="not an XNYS session"):
        FakeAlpaca({"SPY": daily_bars().set_axis(daily_bars().index + pd.Timedelta(days=5))})
    with pytest.raises(ConfigError, match="timeframe"):
        FakeAlpaca({"SPY": daily_bars()}, timeframe="1Hour")
    fake = FakeAlpaca({"SPY": daily_bars()})
    assert fake.clock.now() == at("2024-06-17 09:30")  # default: first bar's open
    fake.clock.advance("1h")
    with pytest.raises(ConfigError, match="back"):
        fake.clock.set(at("2024-06-17 09:00"))


# ----------------------------------------------------------------- data REST
def bars_request(symbols, timeframe, **extra) -> StockBarsRequest:
    return StockBarsRequest(symbol_or_symbols=symbols, timeframe=timeframe,
                            start=pd.Timestamp("2024-06-01", tz="UTC"), **extra)


def test_daily_bars_only_complete_and_partial_knob(daily):
    client = data_client(daily)
    daily.clock.set(at("2024-06-21 11:00"))
    frame = client.get_stock_bars(bars_request(["SPY", "QQQ"], TimeFrame.Day)).df
    spy = frame.loc["SPY"]
    assert list(spy.index) == [at(f"2024-06-{d} 00:00") for d in (17, 18, 20)]
    assert spy["open"].tolist() == daily_bars()["open"].iloc[:3].tolist()
    daily.faults.partial_daily_bar = True
    spy = client.get_stock_bars(bars_request("SPY", TimeFrame.Day)).df.loc["SPY"]
    today = spy.iloc[-1]
    assert spy.index[-1] == at("2024-06-21 00:00")
    assert today["open"] == today["high"] == today["low"] == today["close"] == 103.0
    assert today["volume"] < 1000
    with pytest.raises(APIError) as error:
        client.get_stock_bars(bars_request("SPY", TimeFrame.Minute))
    assert error.value.status_code == 422


def test_minute_bars_aggregate_page_and_latest(minute):
    client = data_client(minute)
    minute.clock.set(at("2024-07-01 09:47:30"))
    five = client.get_stock_bars(bars_request("SPY", TimeFrame(5, TimeFrameUnit.Minute))).df
    seeds = minute_bars()
    assert list(five.loc["SPY"].index) == [at(f"2024-07-01 09:{m}") for m in (30, 35, 40)]
    bucket = seeds.loc[at("2024-07-01 09:35"):at("2024-07-01 09:39")]
    row = five.loc["SPY"].iloc[1]
    assert (row["open"], row["close"]) == (bucket["open"].iloc[0], bucket["close"].iloc[-1])
    assert (row["high"], row["low"], row["volume"]) == (
        bucket["high"].max(), bucket["low"].min(), bucket["volume"].sum())
    pages, token = [], None
    while True:
        params = {"symbols": "SPY,QQQ", "timeframe": "1Min", "limit": 7,
                  "start": "2024-07-01T13:30:00Z", **({"page_token": token} if token else {})}
        body = client.get("/stocks/bars", params)
        pages.append(body)
        token = body["next_page_token"]
        if token is None:
            break
    flat = [(s, b["t"]) for page in pages for s, bars in page["bars"].items() for b in bars]
    assert len(flat) == 2 * 17 and len(set(flat)) == len(flat)  # 09:30..09:46 complete
    assert max(b["t"] for p in pages for b in p["bars"].get("SPY", [])) == "2024-07-01T13:46:00Z"
    latest = client.get_stock_latest_bar(StockLatestBarRequest(symbol_or_symbols=["SPY"]))
    assert latest["SPY"].timestamp == at("2024-07-01 09:46")


def test_sdk_follows_next_page_token_across_10000_bars():
    day_frames = [minute_bars(day=str(d.date()))
                  for d in xnys_sessions("2024-06-03", "2024-07-26")]
    fake = FakeAlpaca({"SPY": pd.concat(day_frames)}, timeframe="1Min",
                      start=at("2024-07-29 09:00"))
    with fake:
        frame = data_client(fake).get_stock_bars(bars_request("SPY", TimeFrame.Minute)).df
        assert len(frame) == 390 * len(day_frames) > 10_000
        assert [r["query"].get("page_token") is not None for r in fake.requests] == [False, True]


def test_sip_recent_forbidden(minute):
    client = data_client(minute)
    minute.clock.set(at("2024-07-01 09:55"))
    minute.faults.sip_recent_forbidden = True
    with pytest.raises(APIError) as error:
        client.get_stock_bars(bars_request("SPY", TimeFrame.Minute, feed="sip"))
    assert error.value.status_code == 403
    assert json.loads(str(error.value))["message"] == (
        "subscription does not permit querying recent SIP data")
    old_end = minute.clock.now() - pd.Timedelta(minutes=16)
    ok = client.get_stock_bars(bars_request("SPY", TimeFrame.Minute, feed="sip", end=old_end))
    assert ok.df.index.get_level_values("timestamp").max() == at("2024-07-01 09:39")
    assert len(client.get_stock_bars(bars_request("SPY", TimeFrame.Minute, feed="iex")).df) == 25


@pytest.fixture(scope="module")
def paging_market() -> Market:
    """A bare Market (no servers): the data handlers are called directly for speed."""
    return Market({"SPY": minute_bars(minutes=30), "QQQ": minute_bars(minutes=30, base=80.0)},
                  "1Min", at("2024-07-01 09:55"), 1e5, Faults())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(limit=st.integers(1, 40), newest_first=st.booleans())
def test_paging_returns_exactly_the_unpaged_bars(paging_market, limit, newest_first):
    sort = "desc" if newest_first else "asc"
    base = {"symbols": "SPY,QQQ", "timeframe": "1Min", "start": "2024-07-01T13:30:00Z",
            "sort": sort}
    _, whole = stock_bars(paging_market, Call("GET", "/v2/stocks/bars", {**base, "limit": "10000"}))
    assert [b["t"] for b in whole["bars"]["SPY"]] == sorted(
        (b["t"] for b in whole["bars"]["SPY"]), reverse=newest_first)
    collected, token = {}, None
    while True:
        query = {**base, "limit": str(limit), **({"page_token": token} if token else {})}
        _, page = stock_bars(paging_market, Call("GET", "/v2/stocks/bars", query))
        assert sum(len(bars) for bars in page["bars"].values()) <= limit
        for symbol, bars in page["bars"].items():
            collected.setdefault(symbol, []).extend(bars)
        token = page["next_page_token"]
        if token is None:
            break
    assert collected == whole["bars"]
    assert len(collected["SPY"]) == len(collected["QQQ"]) == 25


@settings(max_examples=30, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(["SPY", "QQQ"]), st.sampled_from(["buy", "sell"]),
                                st.integers(1, 20), st.integers(0, 3)), min_size=1, max_size=12))
def test_book_invariants_under_random_orders(steps):
    book = Market({"SPY": minute_bars(minutes=60), "QQQ": minute_bars(minutes=60, base=80.0)},
                  "1Min", at("2024-07-01 09:30"), 1e6, Faults())
    for symbol, side, qty, wait in steps:
        book.submit({"symbol": symbol, "qty": qty, "side": side, "type": "market",
                     "time_in_force": "day"})
        book.advance_to(book.now_ns + wait * 60_000_000_000)
    fills = book.fills()
    for symbol in ("SPY", "QQQ"):
        held = sum(f["qty"] for f in fills if f["symbol"] == symbol)
        assert book.position_qty().get(symbol, 0.0) == pytest.approx(held)
    assert book.cash == pytest.approx(1e6 - sum(f["qty"] * f["price"] for f in fills))
    assert all(o["status"] == "filled" for o in book.orders())  # every step reaches a live bar
    opens = {s: dict(zip(b.open_time, b.o, strict=True)) for s, b in book.series.items()}
    assert all(opens[f["symbol"]][f["time"].value] == f["price"] for f in fills)


# -------------------------------------------------------------------- streams
@contextmanager
def running(fake: FakeAlpaca, stream, kind: str):
    """Run an SDK stream in its own thread until it finished its handshake with the fake."""
    stream._reconnect_min_backoff = 0.05  # reconnect quickly after injected drops
    thread = threading.Thread(target=stream.run, daemon=True)
    thread.start()
    wait_until(lambda: fake.stream_counts()[kind] >= 1)
    try:
        yield
    finally:
        stream.stop()
        fake.close_streams()
        thread.join(WAIT)
        assert not thread.is_alive()


def wait_until(condition, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within the timeout")
        time.sleep(0.01)


def collect(target: queue.Queue):
    async def handler(item) -> None:
        target.put(item)
    return handler


def take(source: queue.Queue, count: int) -> list:
    return [source.get(timeout=WAIT) for _ in range(count)]


def test_trading_stream_events_and_faults(daily):
    updates: queue.Queue = queue.Queue()
    stream = TradingStream(KEY, SECRET, paper=True, url_override=daily.trading_stream_url)
    stream.subscribe_trade_updates(collect(updates))
    client = trading(daily)
    with running(daily, stream, "trading"):
        client.submit_order(market("SPY", 3, cid="s1"))
        daily.clock.set(at("2024-06-20 09:30"))
        new, fill = take(updates, 2)
        assert (new.event, fill.event) == ("new", "fill")
        assert fill.order.client_order_id == "s1" and fill.order.status == "filled"
        assert (fill.qty, fill.position_qty, fill.price) == (3.0, 3.0, 102.0)
        assert str(fill.execution_id) == daily.fills()[0]["id"]

        daily.faults.duplicate_events = True
        client.cancel_order_by_id(client.submit_order(LimitOrderRequest(
            symbol="SPY", qty=1, side="buy", time_in_force="gtc", limit_price=1.0)).id)
        events = take(updates, 4)
        assert [e.event for e in events] == ["new", "new", "canceled", "canceled"]
        assert events[0].execution_id == events[1].execution_id
        daily.faults.duplicate_events = False

        daily.faults.reorder_events = True
        client.submit_order(market("SPY", 1))  # new + fill at once (the session bar is open)
        assert [e.event for e in take(updates, 2)] == ["fill", "new"]
        daily.faults.reorder_events = False

        with connect(daily.trading_stream_url) as second:
            daily.faults.refuse_second_trading_connection = True
            second.send(json.dumps({"action": "authenticate",
                                    "data": {"key_id": KEY, "secret_key": SECRET}}))
            reply = json.loads(second.recv(timeout=WAIT))
            assert reply["data"]["status"] == "unauthorized"
        daily.faults.refuse_second_trading_connection = False

        daily.faults.drop_trading_socket = True
        wait_until(lambda: daily.stream_counts()["trading_sessions"] == 2)  # SDK reconnected
        wait_until(lambda: daily.stream_counts()["trading"] == 1)
        client.submit_order(market("QQQ", 1, cid="after-drop"))
        assert {e.order.client_order_id for e in take(updates, 2)} == {"after-drop"}


def test_data_stream_bars_and_faults(minute):
    bars: queue.Queue = queue.Queue()
    updated: queue.Queue = queue.Queue()
    stream = StockDataStream(KEY, SECRET, url_override=minute.data_stream_url)
    stream.subscribe_bars(collect(bars), "SPY")
    stream.subscribe_updated_bars(collect(updated), "SPY")
    seeds = minute_bars()
    with running(minute, stream, "data"):
        minute.clock.advance("2min")
        first, second = take(bars, 2)
        assert (first.symbol, first.timestamp) == ("SPY", at("2024-07-01 09:35"))
        assert second.timestamp == at("2024-07-01 09:36")
        assert first.open == seeds.loc[at("2024-07-01 09:35"), "open"]
        assert first.volume == seeds.loc[at("2024-07-01 09:35"), "volume"]

        minute.faults.skip_minute = {at("2024-07-01 09:37")}
        minute.faults.late_updated_bars = True
        minute.clock.advance("2min")
        [only] = take(bars, 1)
        assert only.timestamp == at("2024-07-01 09:38")
        assert take(updated, 1)[0].timestamp == at("2024-07-01 09:36")
        minute.faults.late_updated_bars = False

        minute.faults.mute_data = True
        minute.clock.advance("1min")
        with pytest.raises(queue.Empty):
            bars.get(timeout=0.3)
        minute.faults.mute_data = False

        minute.faults.drop_data_at_bar = 1
        minute.clock.advance("1min")
        assert take(bars, 1)[0].timestamp == at("2024-07-01 09:40")
        wait_until(lambda: minute.stream_counts()["data_sessions"] == 2)  # SDK reconnected
        wait_until(lambda: minute.stream_counts()["data"] == 1)  # ... and resubscribed
        minute.clock.advance("1min")
        assert take(bars, 1)[0].timestamp == at("2024-07-01 09:41")


def test_daily_bars_stream_and_data_auth_failure(daily):
    received: queue.Queue = queue.Queue()
    stream = StockDataStream(KEY, SECRET, url_override=daily.data_stream_url)
    stream.subscribe_daily_bars(collect(received), "*")
    with running(daily, stream, "data"):
        daily.clock.set(at("2024-06-20 16:00"))
        got = take(received, 2)
        assert sorted(b.symbol for b in got) == ["QQQ", "SPY"]
        assert {b.timestamp for b in got} == {at("2024-06-20 00:00")}
        assert {b.symbol: b.open for b in got}["SPY"] == 102.0
    with connect(daily.data_stream_url) as raw:
        assert msgpack.unpackb(raw.recv(timeout=WAIT)) == [{"T": "success", "msg": "connected"}]
        raw.send(msgpack.packb({"action": "auth", "key": KEY, "secret": "wrong"}))
        assert msgpack.unpackb(raw.recv(timeout=WAIT))[0]["code"] == 402


def test_stream_urls_need_a_running_fake():
    fake = FakeAlpaca({"SPY": daily_bars()})
    with pytest.raises(ConfigError, match="started"):
        _ = fake.url
