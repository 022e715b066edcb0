"""Fixtures for the data-layer tests: real embedded bars and the provider fakes."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.framework.data.fakes import FakeAlpacaServer, YahooStub


@pytest.fixture(scope="session")
def sp500_raw() -> pd.DataFrame:
    """``arch.data.sp500`` as shipped (real ^GSPC daily bars 1999-2018), read offline."""
    from arch.data import sp500

    return sp500.load()


@pytest.fixture
def alpaca_server():
    """A fake Alpaca data server on 127.0.0.1 (port chosen by the OS)."""
    with FakeAlpacaServer() as server:
        yield server


@pytest.fixture
def yahoo_stub(monkeypatch: pytest.MonkeyPatch) -> YahooStub:
    """Replace ``yfinance.Ticker.history`` with an offline stub (no network)."""
    import yfinance

    stub = YahooStub()
    monkeypatch.setattr(
        yfinance.Ticker, "history", lambda self, *args, **kwargs: stub.history(self, **kwargs)
    )
    return stub
