"""Yahoo provider against a stubbed ``yfinance.Ticker.history`` (no network)."""

from __future__ import annotations

import pandas as pd
import pytest

from framework.data.embedded import embedded_frame
from framework.data.frames import parse_timeframe
from framework.data.providers import RetrySpec
from framework.data.pull import PullSpec, pull_symbol, pull_symbols
from framework.data.store import BarStore
from framework.data.yahoo import YahooProvider, yahoo_ticker
from framework.errors import ProviderError
from tests.framework.data.fakes import yahoo_daily_frame

DAY = parse_timeframe("1d")
NO_WAIT = PullSpec(retry=RetrySpec(attempts=3, initial_delay=0))


@pytest.fixture
def gspc(yahoo_stub, sp500_raw):
    yahoo_stub.frames["^GSPC"] = yahoo_daily_frame(sp500_raw)
    return yahoo_stub


def test_ticker_spelling():
    assert (yahoo_ticker("gspc"), yahoo_ticker("^VIX"), yahoo_ticker("BRK-B")) == (
        "^GSPC",
        "^VIX",
        "BRK-B",
    )


def test_daily_fetch_labels_match_the_embedded_loader(gspc):
    frame = YahooProvider().fetch(
        "GSPC", pd.Timestamp("2018-01-02"), pd.Timestamp("2018-12-31"), DAY
    )
    expected = embedded_frame("GSPC").loc["2018-01-02":"2018-12-31 23:59"]
    pd.testing.assert_frame_equal(frame, expected, check_names=False)
    call = gspc.calls[-1]
    assert (call["start"], call["end"], call["auto_adjust"]) == ("2018-01-02", "2019-01-01", True)


def test_intraday_fetch_labels_bar_close():
    starts = pd.date_range("2025-11-28 09:30", periods=3, freq="5min", tz="America/New_York")
    raw = pd.DataFrame(
        {"Open": 1.0, "High": 2.0, "Low": 0.5, "Close": 1.5, "Volume": 10}, index=starts
    )
    from framework.data.yahoo import yahoo_frame

    frame = yahoo_frame(raw, parse_timeframe("5min"))
    assert frame.index[0] == pd.Timestamp("2025-11-28 14:35", tz="UTC")


def test_first_pull_then_incremental_pull_appends_only_new_bars(gspc, sp500_raw):
    store = BarStore()
    now = pd.Timestamp("2030-01-01", tz="UTC")
    first = pull_symbol(
        YahooProvider(),
        "GSPC",
        PullSpec(start="2018-01-01", end="2018-06-29"),
        store=store,
        now=now,
    )
    assert first.action == "created" and first.rows == first.new_rows
    second = pull_symbol(YahooProvider(), "GSPC", PullSpec(end="2018-12-31"), store=store, now=now)
    assert second.action == "appended"
    # The incremental request starts at the last stored session (to compare the overlap bar).
    assert gspc.calls[-1]["start"] == "2018-06-29"
    stored, meta = store.read("GSPC")
    expected = embedded_frame("GSPC").loc["2018-01-02":"2018-12-31 23:59"]
    pd.testing.assert_frame_equal(stored, expected, check_names=False)
    assert second.new_rows == len(expected) - first.rows
    assert meta.source.startswith("yahoo:^GSPC") and meta.adjusted
    third = pull_symbol(YahooProvider(), "GSPC", PullSpec(end="2018-12-31"), store=store, now=now)
    assert (third.action, third.new_rows) == ("up to date", 0)


def test_retry_after_a_transient_network_failure(gspc):
    gspc.failures.append(ConnectionError("connection reset"))
    waits = []
    result = pull_symbol(
        YahooProvider(),
        "GSPC",
        PullSpec(
            start="2018-12-01", end="2018-12-31", retry=RetrySpec(attempts=3, initial_delay=0.25)
        ),
        sleep=waits.append,
        now=pd.Timestamp("2030-01-01", tz="UTC"),
    )
    assert result.action == "created" and waits == [0.25]
    assert "connection reset" in result.messages[0]


def test_changed_history_triggers_a_full_refetch(gspc, sp500_raw):
    store = BarStore()
    now = pd.Timestamp("2030-01-01", tz="UTC")
    pull_symbol(
        YahooProvider(),
        "GSPC",
        PullSpec(start="2018-01-01", end="2018-06-29"),
        store=store,
        now=now,
    )
    # A dividend re-scales Yahoo's whole adjusted history: every price moves by 1 %.
    scaled = yahoo_daily_frame(sp500_raw)
    scaled[["Open", "High", "Low", "Close"]] *= 0.99
    gspc.frames["^GSPC"] = scaled
    result = pull_symbol(YahooProvider(), "GSPC", PullSpec(end="2018-12-31"), store=store, now=now)
    assert result.action == "refetched" and "history changed" in result.messages[0]
    stored, _ = store.read("GSPC")
    assert stored.index[0] == embedded_frame("GSPC").loc["2018-01-02"].index[0]
    expected = embedded_frame("GSPC").loc["2018-01-02":"2018-12-31 23:59", "close"] * 0.99
    assert (stored["close"].to_numpy() == expected.to_numpy()).all()


def test_bars_that_have_not_closed_yet_are_dropped(gspc):
    now = pd.Timestamp("2018-12-31 15:00", tz="UTC")  # session of 12-31 still open
    result = pull_symbol(
        YahooProvider(), "GSPC", PullSpec(start="2018-12-20", end="2018-12-31"), now=now
    )
    assert result.last.startswith("2018-12-28T21:00")


def test_unknown_ticker_fails_without_retrying(yahoo_stub):
    results = pull_symbols(YahooProvider(), ["NOPE"], NO_WAIT, sleep=lambda s: None)
    assert results[0].action == "failed"
    assert "unknown or delisted ticker 'NOPE'" in results[0].messages[0]
    assert len(yahoo_stub.calls) == 1


def test_empty_answer_for_a_new_series_is_an_error(gspc):
    with pytest.raises(ProviderError, match="returned no bars for GSPC"):
        pull_symbol(YahooProvider(), "GSPC", PullSpec(start="2025-01-01", end="2025-02-01"))


def test_refuses_to_append_to_a_series_from_another_source(gspc, tmp_path):
    from framework.data.importing import import_csv

    path = tmp_path / "GSPC.csv"
    path.write_text("date,open,high,low,close,volume\n2018-01-02,1,2,0.5,1.5,10\n")
    import_csv(path)
    with pytest.raises(ProviderError, match="would mix sources.*--full"):
        pull_symbol(YahooProvider(), "GSPC", PullSpec(end="2018-12-31"))
    result = pull_symbol(
        YahooProvider(),
        "GSPC",
        PullSpec(start="2018-12-01", end="2018-12-31", full=True),
        now=pd.Timestamp("2030-01-01", tz="UTC"),
    )
    assert result.action == "replaced" and result.first.startswith("2018-12-03")


def test_no_start_asks_for_all_history_and_cuts_at_end(gspc):
    frame = YahooProvider().fetch("GSPC", None, pd.Timestamp("1999-01-31"), DAY)
    call = gspc.calls[-1]
    assert call["period"] == "max" and "end" not in call and "start" not in call
    pd.testing.assert_frame_equal(
        frame, embedded_frame("GSPC").loc[:"1999-01-31 23:59"], check_names=False
    )
