"""Alpaca provider: the real alpaca-py client against a local fake of /v2/stocks/bars."""

from __future__ import annotations

import pandas as pd
import pytest

from framework.data.alpaca import AlpacaProvider, AlpacaSpec, alpaca_frame
from framework.data.embedded import embedded_frame
from framework.data.frames import parse_timeframe
from framework.data.providers import RetrySpec
from framework.data.pull import PullSpec, pull_symbol
from framework.data.store import BarStore
from framework.errors import ProviderError
from tests.framework.data.fakes import KEY, SECRET, alpaca_daily_bars

NOW = pd.Timestamp("2030-01-01", tz="UTC")
ENV = {"APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET}


@pytest.fixture
def server(alpaca_server, sp500_raw):
    # Real bars (the S&P 500 index) served as if they were SPY, 2017-2018, 7 bars per page.
    alpaca_server.state.bars["SPY"] = alpaca_daily_bars(sp500_raw.loc["2017-01-01":])
    alpaca_server.state.page_size = 7
    return alpaca_server


def _provider(server, **env):
    return AlpacaProvider.from_environment(environ={**ENV, "APCA_API_DATA_URL": server.url, **env})


def _expected(first, last):
    return embedded_frame("GSPC").loc[first : f"{last} 23:59"]


def test_missing_keys_name_the_variables():
    with pytest.raises(ProviderError, match="missing APCA_API_SECRET_KEY.*Export APCA_API_KEY_ID"):
        AlpacaProvider.from_environment(environ={"APCA_API_KEY_ID": "k"})
    with pytest.raises(ProviderError, match="missing APCA_API_KEY_ID, APCA_API_SECRET_KEY"):
        AlpacaProvider.from_environment(environ={})


def test_keys_are_not_shown_in_repr(server):
    assert SECRET not in repr(_provider(server)) and KEY not in repr(_provider(server))


def test_paged_daily_fetch_labels_open_times_at_session_close(server):
    frame = _provider(server).fetch(
        "SPY", pd.Timestamp("2018-11-01"), pd.Timestamp("2018-11-30"), parse_timeframe("1d")
    )
    pd.testing.assert_frame_equal(frame, _expected("2018-11-01", "2018-11-30"), check_names=False)
    # 2018-11-23 was a half day: labelled 18:00 UTC.
    assert pd.Timestamp("2018-11-23 18:00", tz="UTC") in frame.index
    pages = [r for r in server.state.requests if r["path"] == "/v2/stocks/bars"]
    assert len(pages) == -(-len(frame) // 7) and len(pages) > 1
    assert pages[0]["adjustment"] == "all" and pages[0]["timeframe"] == "1Day"


def test_incremental_pull_requests_only_from_the_last_stored_bar(server):
    store = BarStore()
    provider = _provider(server)
    first = pull_symbol(
        provider, "SPY", PullSpec(start="2018-10-01", end="2018-10-31"), store=store, now=NOW
    )
    server.state.requests.clear()
    second = pull_symbol(provider, "SPY", PullSpec(end="2018-12-31"), store=store, now=NOW)
    assert (first.action, second.action) == ("created", "appended")
    assert server.state.requests[0]["start"].startswith("2018-10-31")
    stored, meta = store.read("SPY")
    pd.testing.assert_frame_equal(stored, _expected("2018-10-01", "2018-12-31"), check_names=False)
    assert second.new_rows == len(stored) - first.rows
    assert meta.source.startswith("alpaca:SPY") and meta.adjusted


def test_retry_after_a_transient_server_error(server):
    server.state.fail_statuses = [503]
    waits = []
    result = pull_symbol(
        _provider(server),
        "SPY",
        PullSpec(
            start="2018-12-01", end="2018-12-31", retry=RetrySpec(attempts=3, initial_delay=0.1)
        ),
        sleep=waits.append,
        now=NOW,
    )
    assert result.action == "created" and waits == [0.1]
    assert "HTTP 503" in result.messages[0]
    assert result.rows == len(_expected("2018-12-01", "2018-12-31"))


def test_retries_are_bounded(server):
    server.state.fail_statuses = [500, 502, 503]
    with pytest.raises(ProviderError, match="failed after 3 attempt"):
        pull_symbol(
            _provider(server),
            "SPY",
            PullSpec(start="2018-12-01", retry=RetrySpec(attempts=3, initial_delay=0)),
            sleep=lambda s: None,
            now=NOW,
        )


def test_bad_keys_are_a_permanent_error(server):
    provider = _provider(server, APCA_API_SECRET_KEY="wrong")
    with pytest.raises(ProviderError, match="HTTP 401.*Check APCA_API_KEY_ID"):
        provider.fetch("SPY", pd.Timestamp("2018-12-01"), None, parse_timeframe("1d"))
    assert len(server.state.requests) == 1


def test_unreachable_host_is_transient():
    provider = AlpacaProvider(KEY, SECRET, AlpacaSpec(url_override="http://127.0.0.1:9", timeout=2))
    from framework.data.providers import TransientProviderError

    with pytest.raises(TransientProviderError, match="network error"):
        provider.fetch("SPY", pd.Timestamp("2018-12-01"), None, parse_timeframe("1d"))


def test_intraday_bars_are_labelled_open_plus_length():
    bars = [
        {"t": "2024-01-02T14:30:00Z", "o": 1, "h": 2, "l": 0.5, "c": 1.5, "v": 10},
        {"t": "2024-01-02T14:35:00Z", "o": 1, "h": 2, "l": 0.5, "c": 1.5, "v": 10},
    ]
    frame = alpaca_frame(bars, parse_timeframe("5min"))
    assert list(frame.index) == [
        pd.Timestamp("2024-01-02 14:35", tz="UTC"),
        pd.Timestamp("2024-01-02 14:40", tz="UTC"),
    ]
    with pytest.raises(ProviderError, match="lacks a readable 't'"):
        alpaca_frame([{"o": 1}], parse_timeframe("5min"))
