"""Local fakes for the remote providers: an Alpaca market-data server and a yfinance stub.

Both serve real daily bars (the S&P 500 index from ``arch.data.sp500``) so tests can check that
what lands in the store equals what the embedded loader produces for the same sessions.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pandas as pd

KEY, SECRET = "test-key", "test-secret"


@dataclass
class AlpacaState:
    """Mutable state of the fake server (tests edit it between calls)."""

    bars: dict[str, list[dict]] = field(default_factory=dict)
    page_size: int = 500
    fail_statuses: list[int] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)


def alpaca_daily_bars(raw: pd.DataFrame) -> list[dict]:
    """Alpaca wire-format daily bars (``t`` = midnight New York, in UTC) from an OHLCV frame."""
    out = []
    for date, row in raw.iterrows():
        start = pd.Timestamp(date).tz_localize("America/New_York").tz_convert("UTC")
        out.append(
            {
                "t": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "o": row["Open"],
                "h": row["High"],
                "l": row["Low"],
                "c": row["Close"],
                "v": row["Volume"],
                "n": 1000,
                "vw": row["Close"],
            }
        )
    return out


def _handler(state: AlpacaState):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def _send(self, status: int, body: dict) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self):
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            state.requests.append({"path": url.path, **query})
            if (
                self.headers.get("APCA-API-KEY-ID") != KEY
                or self.headers.get("APCA-API-SECRET-KEY") != SECRET
            ):
                return self._send(401, {"message": "unauthorized"})
            if url.path != "/v2/stocks/bars":
                return self._send(404, {"code": 40410000, "message": "not found"})
            if state.fail_statuses:
                status = state.fail_statuses.pop(0)
                return self._send(status, {"code": status * 100000, "message": "try later"})
            symbol = query["symbols"]
            start = pd.Timestamp(query["start"])
            end = pd.Timestamp(query["end"]) if "end" in query else pd.Timestamp.now(tz="UTC")
            selected = [
                b for b in state.bars.get(symbol, []) if start <= pd.Timestamp(b["t"]) <= end
            ]
            offset = int(base64.b64decode(query["page_token"])) if query.get("page_token") else 0
            page = selected[offset : offset + state.page_size]
            nxt = offset + state.page_size
            token = base64.b64encode(str(nxt).encode()).decode() if nxt < len(selected) else None
            return self._send(
                200, {"bars": {symbol: page}, "symbol": symbol, "next_page_token": token}
            )

    return Handler


class FakeAlpacaServer:
    """``/v2/stocks/bars`` on 127.0.0.1 with paging, auth and injectable failures."""

    def __init__(self) -> None:
        self.state = AlpacaState()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeAlpacaServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@dataclass
class YahooStub:
    """Replacement for ``yfinance.Ticker.history`` serving frames per Yahoo ticker."""

    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    failures: list[Exception] = field(default_factory=list)
    calls: list[dict] = field(default_factory=list)

    def history(self, ticker_self, **kwargs) -> pd.DataFrame:
        self.calls.append({"ticker": ticker_self.ticker, **kwargs})
        if self.failures:
            raise self.failures.pop(0)
        raw = self.frames.get(ticker_self.ticker)
        if raw is None:
            from yfinance.exceptions import YFTzMissingError

            raise YFTzMissingError(ticker_self.ticker)
        index = raw.index
        keep = pd.Series(True, index=index)
        if "start" in kwargs:
            keep &= index >= pd.Timestamp(kwargs["start"]).tz_localize(index.tz)
        if "end" in kwargs:  # exclusive, like yfinance
            keep &= index < pd.Timestamp(kwargs["end"]).tz_localize(index.tz)
        return raw[keep.to_numpy()]


def yahoo_daily_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """A ``Ticker.history`` style frame: New York midnight index, Open/High/Low/Close/Volume."""
    out = raw[["Open", "High", "Low", "Close", "Volume"]].copy()
    out.index = pd.DatetimeIndex(raw.index).tz_localize("America/New_York").rename("Date")
    out["Dividends"] = 0.0
    return out
