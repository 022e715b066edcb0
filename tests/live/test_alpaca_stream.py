"""BarStream and TradeUpdates against the fake Alpaca server (real alpaca-py stream clients)."""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.errors import ConfigError
from live.alpaca_feed import fetch_bars
from live.alpaca_stream import BarBuffer, BarStream, OrderEventLog, TradeUpdates
from live.broker import OrderRequest
from live.clock import BarSchedule
from tests.live.alpaca_helpers import broker_for, connection, wait_for
from tests.live.fake_alpaca import KEY, SECRET, FakeAlpaca

pytestmark = [
    # exchange_calendars under pandas 3.1, inside the fake's session table
    pytest.mark.filterwarnings("ignore:Series.values returning an ndarray"),
]

NY = "America/New_York"
FAST = (0.02, 0.2)  # reconnect backoff bounds: reconnect at once after injected faults
STOP_WITHIN = 1.5  # seconds stop() may take


def ny(text: str) -> pd.Timestamp:
    """A New York wall time as UTC."""
    return pd.Timestamp(text, tz=NY).tz_convert("UTC")


def seed(base: float, minutes: int = 120) -> pd.DataFrame:
    """Minute bars from 09:30 New York with distinct values per minute and per symbol."""
    index = pd.date_range(ny("2024-07-01 09:30"), periods=minutes, freq="1min")
    step = np.arange(minutes, dtype=float)
    opens = base + step * 0.25
    return pd.DataFrame({"open": opens, "high": opens + 1.0, "low": opens - 1.0,
                         "close": opens + 0.5, "volume": 1000.0 + step}, index=index)


SEEDS = {"SPY": seed(500.0), "QQQ": seed(400.0), "IWM": seed(200.0)}


@pytest.fixture
def fake():
    server = FakeAlpaca(dict(SEEDS), timeframe="1Min", start=ny("2024-07-01 09:35"))
    with server:
        yield server
    assert server.errors == []


@pytest.fixture
def premarket():
    """A fake before the open: market orders submitted now fill at 09:30 when the clock moves."""
    server = FakeAlpaca(dict(SEEDS), timeframe="1Min", start=ny("2024-07-01 09:29:30"))
    with server:
        yield server
    assert server.errors == []


def stopped_promptly(stream) -> None:
    began = time.monotonic()
    assert stream.stop() is True
    assert time.monotonic() - began < STOP_WITHIN
    assert not stream.running


@contextmanager
def bar_stream(fake: FakeAlpaca, symbols=("SPY", "QQQ"), **options):
    stream = BarStream(symbols, KEY, SECRET, url=fake.data_stream_url,
                       reconnect_backoff=FAST, **options)
    stream.start()
    try:
        wait_for(lambda: stream.connected and fake.stream_counts()["data"] == 1, 10,
                 "the data stream to subscribe")
        yield stream
    finally:
        stopped_promptly(stream)
    assert stream.errors == []


@contextmanager
def trade_updates(fake: FakeAlpaca):
    stream = TradeUpdates(KEY, SECRET, url=fake.trading_stream_url, reconnect_backoff=FAST)
    stream.start()
    try:
        wait_for(lambda: stream.connected and fake.stream_counts()["trading"] == 1, 10,
                 "the trading stream to listen")
        yield stream
    finally:
        stopped_promptly(stream)
    assert stream.errors == []


def has_bars(stream: BarStream, opens: list[pd.Timestamp], symbols=("SPY", "QQQ")):
    def check() -> bool:
        frames = stream.bars_between(min(opens), max(opens))
        return all(t in frames[s].index for s in symbols for t in opens)
    return check


def expected(symbol: str, open_time: pd.Timestamp) -> list[float]:
    return SEEDS[symbol].loc[open_time, ["open", "high", "low", "close", "volume"]].tolist()


# ------------------------------------------------------------------------------- bars
def test_bars_arrive_with_ohlcv_for_subscribed_symbols_only(fake):
    with bar_stream(fake) as stream:
        assert stream.last_message_age() is None
        fake.clock.advance("3min")
        opens = [ny("2024-07-01 09:35"), ny("2024-07-01 09:36"), ny("2024-07-01 09:37")]
        wait_for(has_bars(stream, opens), 10, "three minute bars")
        frames = stream.bars_between(opens[0], opens[-1])
        assert set(frames) == {"SPY", "QQQ"}  # IWM is seeded but not subscribed
        for symbol, frame in frames.items():
            assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
            assert frame.index.tz is not None and str(frame.index.tz) == "UTC"
            assert list(frame.index) == opens
            for t in opens:
                assert frame.loc[t].tolist() == expected(symbol, t)
        inclusive = stream.bars_between(opens[1], opens[1])
        assert [list(f.index) for f in inclusive.values()] == [[opens[1]], [opens[1]]]
        empty = stream.bars_between(ny("2024-07-01 10:00"), ny("2024-07-01 11:00"))
        assert all(f.empty and list(f.columns) == list(frame.columns) for f in empty.values())
        age = stream.last_message_age()
        assert age is not None and 0.0 <= age < 5.0
        assert stream.last_message_age(time.monotonic() + 100.0) > 100.0
        assert (stream.received, stream.updates, stream.reconnects) == (6, 0, 0)
        with pytest.raises(ConfigError, match="time zone"):
            stream.bars_between(pd.Timestamp("2024-07-01 13:35"), opens[-1])


def test_skipped_minute_is_absent_and_rest_backfills_it(fake):
    skipped = ny("2024-07-01 09:36")
    with bar_stream(fake) as stream:
        fake.faults.skip_minute = {skipped}
        fake.clock.advance("3min")
        around = [ny("2024-07-01 09:35"), ny("2024-07-01 09:37")]
        wait_for(has_bars(stream, around), 10, "the bars around the gap")
        frames = stream.bars_between(around[0], around[1])
        assert all(skipped not in f.index for f in frames.values())
        assert all(len(f) == 2 for f in frames.values())
    # the REST endpoint still has the minute: the runner backfills gaps from it
    rest = fetch_bars(connection(fake), ["SPY", "QQQ"], BarSchedule("1Min"),
                      around[0], around[1] + pd.Timedelta(minutes=1))
    close_label = skipped + pd.Timedelta(minutes=1)  # fetch_bars labels bars by close time
    for symbol in ("SPY", "QQQ"):
        assert rest[symbol].loc[close_label].tolist() == expected(symbol, skipped)


@contextmanager
def tapped_bars(fake: FakeAlpaca):
    """The bar dicts the fake's websocket server receives from its market (for recalculation).

    The fake re-sends a symbol's previous bar dict as the updated bar; changing that dict after
    it went out stands for Alpaca's recalculation of the minute (late trades)."""
    listeners = fake.market.bar_listeners
    assert len(listeners) == 1  # the fake's websocket server
    fan_out, sent = listeners[0], []

    def tap(kind: str, symbol: str, bar: dict) -> None:
        sent.append(bar)
        fan_out(kind, symbol, bar)

    with fake.market.lock:
        listeners[0] = tap
    try:
        yield sent
    finally:
        with fake.market.lock:  # the fake removes its own listener when it stops
            listeners[0] = fan_out


def test_late_updated_bar_replaces_the_earlier_values(fake):
    first, second = ny("2024-07-01 09:35"), ny("2024-07-01 09:36")
    with tapped_bars(fake) as sent, bar_stream(fake) as stream:
        fake.faults.late_updated_bars = True
        fake.clock.advance("1min")
        wait_for(has_bars(stream, [first]), 10, "the 09:35 bars")
        for bar in sent:
            bar["c"] += 3.0
            bar["v"] += 77
        fake.clock.advance("1min")
        wait_for(lambda: stream.updates == 2, 10, "two updated bars")
        frames = stream.bars_between(first, second)
        for symbol, frame in frames.items():
            assert list(frame.index) == [first, second]  # replaced, not added
            original = expected(symbol, first)
            assert frame.loc[first].tolist() == [*original[:3], original[3] + 3.0,
                                                 original[4] + 77]
            assert frame.loc[second].tolist() == expected(symbol, second)


def test_dropped_data_socket_reconnects_resubscribes_and_delivers_later_bars(fake):
    with bar_stream(fake) as stream:
        fake.faults.drop_data_at_bar = 1
        fake.clock.advance("1min")
        wait_for(lambda: stream.reconnects == 1 and stream.connected
                 and fake.stream_counts()["data"] == 1, 10, "the SDK to reconnect")
        assert fake.stream_counts()["data_sessions"] == 2
        fake.clock.advance("1min")
        later = ny("2024-07-01 09:36")
        wait_for(has_bars(stream, [later]), 10, "bars after the reconnect")
        assert stream.bars_between(later, later)["SPY"].loc[later].tolist() == expected("SPY",
                                                                                        later)


def test_mute_socket_reconnects_after_data_timeout_and_recovers(fake):
    with bar_stream(fake, symbols=("SPY",), data_timeout=0.6) as stream:
        fake.clock.advance("1min")
        wait_for(has_bars(stream, [ny("2024-07-01 09:35")], ("SPY",)), 10, "a first bar")
        fake.faults.mute_data = True
        fake.clock.advance("1min")
        wait_for(lambda: stream.reconnects >= 1, 10, "a reconnect of the mute socket")
        assert ny("2024-07-01 09:36") not in stream.bars_between(
            ny("2024-07-01 09:30"), ny("2024-07-01 10:00"))["SPY"].index
        fake.faults.mute_data = False

        def next_bar_arrived() -> bool:
            # a bar published while the SDK was reconnecting is lost (REST backfills it):
            # keep moving the clock until one lands in a subscribed session
            before = stream.received
            if stream.connected and fake.stream_counts()["data"] == 1:
                fake.clock.advance("1min")
                deadline = time.monotonic() + 0.3
                while time.monotonic() < deadline and stream.received == before:
                    time.sleep(0.01)
            return stream.received > before

        wait_for(next_bar_arrived, 10, "bars after unmuting")
        assert stream.last_message_age() < 1.0


def test_stop_is_prompt_and_safe_in_every_state(fake):
    never_started = BarStream(["SPY"], KEY, SECRET, url=fake.data_stream_url)
    assert never_started.stop() is True and not never_started.running
    # no server behind the port: the SDK keeps retrying with backoff until stopped
    for unreachable in (BarStream(["SPY"], KEY, SECRET, url="ws://127.0.0.1:9/v2/iex",
                                  reconnect_backoff=FAST),
                        TradeUpdates(KEY, SECRET, url="ws://127.0.0.1:9/stream",
                                     reconnect_backoff=FAST)):
        unreachable.start()
        time.sleep(0.1)
        stopped_promptly(unreachable)
        assert not unreachable.connected and unreachable.sessions == 0
    # stopped right after start, before the thread may even have its event loop
    hasty = BarStream(["SPY"], KEY, SECRET, url=fake.data_stream_url)
    hasty.start()
    stopped_promptly(hasty)
    with pytest.raises(ConfigError, match="already started"):
        hasty.start()


@pytest.mark.parametrize("kwargs, match", [
    ({"symbols": []}, "symbols"),
    ({"symbols": ["*"]}, "symbols"),
    ({"feed": "delayed_sip"}, "feed"),
    ({"data_timeout": 0}, "data_timeout"),
    ({"data_timeout": float("nan")}, "data_timeout"),
    ({"max_minutes": 0}, "max_minutes"),
    ({"reconnect_backoff": (5.0, 1.0)}, "reconnect_backoff"),
])
def test_bar_stream_rejects_bad_configuration(kwargs, match):
    arguments = {"symbols": ["SPY"], "key": KEY, "secret": SECRET, **kwargs}
    with pytest.raises(ConfigError, match=match):
        BarStream(**arguments)


def test_trade_updates_refuses_the_live_host():
    with pytest.raises(ConfigError, match="LIVE"):
        TradeUpdates(KEY, SECRET, url="wss://api.alpaca.markets/stream")


# ------------------------------------------------------------------------ buffer invariants
def test_buffer_prunes_the_oldest_minutes(fake):
    with bar_stream(fake, symbols=("SPY",), max_minutes=3) as stream:
        fake.clock.advance("5min")
        newest = ny("2024-07-01 09:39")
        wait_for(has_bars(stream, [newest], ("SPY",)), 10, "five bars")
        frame = stream.bars_between(ny("2024-07-01 09:30"), newest)["SPY"]
        assert list(frame.index) == list(pd.date_range(ny("2024-07-01 09:37"), newest,
                                                       freq="1min"))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.lists(st.tuples(st.sampled_from(["A", "B"]), st.integers(0, 9),
                                             st.floats(1, 1000)), max_size=40))
def test_buffer_keeps_the_latest_value_of_the_newest_minutes(limit, puts):
    buffer = BarBuffer(limit)
    model: dict[tuple[str, int], float] = {}
    minute = 60_000_000_000
    for symbol, k, price in puts:
        buffer.put(symbol, k * minute, [price, price, price, price, 1.0])
        model[(symbol, k)] = price
        minutes = sorted({m for _, m in model})
        model = {key: v for key, v in model.items() if key[1] in minutes[-limit:]}
    assert len(buffer) == len({m for _, m in model}) <= limit
    frames = buffer.between(["A", "B"], 0, 9 * minute)
    got = {(s, int(t.value // minute)): row["close"]
           for s, frame in frames.items() for t, row in frame.iterrows()}
    assert got == model
    assert all(frame.index.is_monotonic_increasing for frame in frames.values())


# --------------------------------------------------------------------------- trade updates
def submit(fake: FakeAlpaca, broker, cid: str, symbol: str, quantity: float) -> None:
    broker.submit(OrderRequest(client_order_id=cid, symbol=symbol, quantity=quantity))


def test_fills_arrive_signed_in_order_and_match_rest(premarket):
    broker = broker_for(premarket, symbols=("SPY", "QQQ"))
    with trade_updates(premarket) as updates:
        premarket.faults.partial_fills = [0.4, 0.6]
        submit(premarket, broker, "buy-1", "SPY", 5)
        premarket.faults.partial_fills = None
        submit(premarket, broker, "short-1", "QQQ", -2)
        wait_for(lambda: len(updates.events()) == 2, 10, "two 'new' events")
        assert updates.wait(0) is True and not updates.changed.is_set()
        assert [e["event"] for e in updates.events()] == ["new", "new"]
        assert updates.fills() == []

        premarket.clock.set(ny("2024-07-01 09:30"))
        wait_for(lambda: len(updates.fills()) == 2, 10, "the first fills")
        premarket.clock.set(ny("2024-07-01 09:31"))
        wait_for(lambda: len(updates.fills()) == 3, 10, "the rest of the partial fill")
        fills = updates.fills()
        # same instant: a partial fill sorts before a completing fill (see OrderEventLog)
        assert [(f["client_order_id"], f["event"], f["qty"]) for f in fills] == [
            ("buy-1", "partial_fill", 2.0), ("short-1", "fill", -2.0), ("buy-1", "fill", 3.0)]
        assert fills[1]["price"] == SEEDS["QQQ"].loc[ny("2024-07-01 09:30"), "open"]
        assert fills[2]["price"] == SEEDS["SPY"].loc[ny("2024-07-01 09:31"), "open"]
        assert fills[2]["time"] == ny("2024-07-01 09:31")
        truth = premarket.fills()
        assert {f["execution_id"] for f in fills} == {t["id"] for t in truth}
        rest = broker.fills()  # the source of truth: same quantities and prices
        assert sorted((r.symbol, r.quantity, r.price) for r in rest) == sorted(
            (f["symbol"], f["qty"], f["price"]) for f in fills)


def test_duplicate_and_reordered_events_give_each_event_once(premarket):
    broker = broker_for(premarket, symbols=("SPY", "QQQ"))
    with trade_updates(premarket) as updates:
        premarket.faults.duplicate_events = True
        premarket.faults.reorder_events = True
        for k in range(3):
            submit(premarket, broker, f"o{k}", ("SPY", "QQQ")[k % 2], k + 1)
        premarket.clock.set(ny("2024-07-01 09:30"))
        premarket.faults.reorder_events = False  # the fake then releases the frame it held
        wait_for(lambda: len(updates.fills()) == 3 and len(updates.events()) == 6, 10,
                 "all six events")
        time.sleep(0.1)  # duplicates of the last frames arrive right behind them
        events = updates.events()
        assert len(events) == 6
        assert len({e["execution_id"] for e in events}) == 6
        assert [e["event"] for e in events] == ["new"] * 3 + ["fill"] * 3
        fills = updates.fills()
        assert {f["execution_id"] for f in fills} == {t["id"] for t in premarket.fills()}
        assert sorted(f["qty"] for f in fills) == [1.0, 2.0, 3.0]


def test_dropped_trading_socket_reconnects_and_later_events_arrive(premarket):
    broker = broker_for(premarket)
    with trade_updates(premarket) as updates:
        premarket.faults.drop_trading_socket = True
        wait_for(lambda: updates.reconnects == 1 and updates.connected
                 and premarket.stream_counts()["trading"] == 1, 10, "the SDK to reconnect")
        assert premarket.stream_counts()["trading_sessions"] == 2
        submit(premarket, broker, "after-drop", "SPY", 1)
        premarket.clock.set(ny("2024-07-01 09:30"))
        wait_for(lambda: len(updates.fills()) == 1, 10, "the fill after the reconnect")
        assert updates.fills()[0]["client_order_id"] == "after-drop"


def test_a_malformed_trade_update_is_logged_and_kept(premarket, caplog):
    updates = TradeUpdates(KEY, SECRET, url=premarket.trading_stream_url)
    updates.start()
    try:
        wait_for(lambda: premarket.stream_counts()["trading"] == 1, 10, "listening")
        with premarket.market.lock:
            for listener in premarket.market.trade_listeners:
                listener({"stream": "trade_updates", "data": {"event": "fill"}})  # no order
        wait_for(lambda: len(updates.errors) == 1, 10, "the handler error")
    finally:
        stopped_promptly(updates)
    assert isinstance(updates.errors[0], KeyError)
    assert "bad trade update" in caplog.text
    assert updates.events() == [] and not updates.changed.is_set()


def _event(order: str, event: str, minute: int, filled: float) -> dict:
    return {"execution_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{order}/{event}/{filled}")),
            "event": event, "order_id": order, "client_order_id": order, "symbol": "SPY",
            "side": "buy", "status": "", "time": pd.Timestamp("2024-07-01 13:30", tz="UTC")
            + pd.Timedelta(minutes=minute), "qty": 1.0, "price": 1.0, "position_qty": None,
            "filled_qty": filled}


# in event order: by time, then new < partial_fill < fill < other, then cumulative fill
LIFECYCLE = [_event("a", "new", 0, 0.0), _event("b", "new", 1, 0.0),
             _event("a", "partial_fill", 1, 1.0), _event("a", "fill", 1, 3.0),
             _event("c", "new", 2, 0.0), _event("c", "partial_fill", 2, 2.0),
             _event("c", "fill", 2, 4.0), _event("b", "canceled", 2, 0.0)]


@settings(max_examples=80, deadline=None)
@given(st.permutations(LIFECYCLE), st.lists(st.sampled_from(LIFECYCLE), max_size=10))
def test_event_log_order_and_identity_do_not_depend_on_arrival(order, repeats):
    log = OrderEventLog()
    added = [log.add(e) for e in [*order, *repeats]]
    assert sum(added) == len(LIFECYCLE) and not any(added[len(LIFECYCLE):])
    assert [e["execution_id"] for e in log.events()] == [e["execution_id"] for e in LIFECYCLE]
    assert [f["event"] for f in log.fills()] == ["partial_fill", "fill", "partial_fill", "fill"]
