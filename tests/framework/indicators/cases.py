"""The indicator table shared by the property tests, and generators of OHLCV bars.

Each case names an indicator call on a dict of bars (``open``, ``high``, ``low``, ``close``,
``volume``), the inputs it reads (a NaN in any of them restarts it) and its lookback: the row of
the first valid output on clean data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

import framework.indicators as fi

Bars = dict[str, np.ndarray]
HLC = ("high", "low", "close")
HLCV = ("high", "low", "close", "volume")


@dataclass(frozen=True)
class Case:
    """One indicator call: ``run(bars)`` returns a tuple of output arrays."""

    name: str
    call: Callable[[Bars], object]
    inputs: tuple[str, ...]
    lookback: int | tuple[int, ...]  # one per output when they differ

    def lookbacks(self, n_outputs: int) -> tuple[int, ...]:
        if isinstance(self.lookback, tuple):
            return self.lookback
        return (self.lookback,) * n_outputs

    def run(self, bars: Bars) -> tuple[np.ndarray, ...]:
        out = self.call(bars)
        return tuple(out) if isinstance(out, tuple) else (out,)


CASES = [
    Case("sma", lambda b: fi.sma(b["close"], 5), ("close",), 4),
    Case("ema", lambda b: fi.ema(b["close"], 5), ("close",), 4),
    Case("wma", lambda b: fi.wma(b["close"], 5), ("close",), 4),
    Case("rsi", lambda b: fi.rsi(b["close"], 6), ("close",), 6),
    Case("macd", lambda b: fi.macd(b["close"], 3, 7, 4), ("close",), 9),
    Case("bollinger", lambda b: fi.bollinger_bands(b["close"], 5, 2.0), ("close",), 4),
    Case("true_range", lambda b: fi.true_range(b["high"], b["low"], b["close"]), HLC, 1),
    Case("atr", lambda b: fi.atr(b["high"], b["low"], b["close"], 5), HLC, 5),
    Case("adx", lambda b: fi.adx(b["high"], b["low"], b["close"], 4), HLC, (7, 4, 4)),
    Case("stochastic", lambda b: fi.stochastic(b["high"], b["low"], b["close"], 5, 3, 2), HLC, 7),
    Case("cci", lambda b: fi.cci(b["high"], b["low"], b["close"], 5), HLC, 4),
    Case("williams_r", lambda b: fi.williams_r(b["high"], b["low"], b["close"], 5), HLC, 4),
    Case("mfi", lambda b: fi.mfi(b["high"], b["low"], b["close"], b["volume"], 5), HLCV, 5),
    Case("obv", lambda b: fi.obv(b["close"], b["volume"]), ("close", "volume"), 0),
    Case("vwap", lambda b: fi.vwap(b["high"], b["low"], b["close"], b["volume"], 4), HLCV, 3),
    Case("roc", lambda b: fi.roc(b["close"], 3), ("close",), 3),
    Case("momentum", lambda b: fi.momentum(b["close"], 3), ("close",), 3),
    Case(
        "keltner",
        lambda b: fi.keltner_channels(b["high"], b["low"], b["close"], 6, 3, 1.5),
        HLC,
        5,
    ),
    Case("donchian", lambda b: fi.donchian_channels(b["high"], b["low"], 4), ("high", "low"), 3),
    Case("sar", lambda b: fi.parabolic_sar(b["high"], b["low"]), ("high", "low"), 1),
    Case("zscore", lambda b: fi.rolling_zscore(b["close"], 5), ("close",), 4),
    Case("realized_vol", lambda b: fi.realized_volatility(b["close"], 5), ("close",), 5),
    Case("percentile_rank", lambda b: fi.percentile_rank(b["close"], 6), ("close",), 5),
    Case("range_rank", lambda b: fi.range_rank(b["close"], 6), ("close",), 5),
    Case("rolling_max", lambda b: fi.rolling_max(b["close"], 4), ("close",), 3),
    Case("rolling_min", lambda b: fi.rolling_min(b["close"], 4), ("close",), 3),
    Case("drawdown", lambda b: fi.drawdown(b["close"]), ("close",), 0),
]
CASE_IDS = [case.name for case in CASES]


def make_bars(returns, spreads, volumes, decimals: int | None = 2, scale: float = 1.0) -> Bars:
    """Valid OHLCV bars from per-bar returns, (up, down) spreads and volumes.

    Rounding prices to ``decimals`` creates ties (equal highs, flat closes) on purpose: those are
    where the branchy parts of the indicators (DM rules, SAR reversals, zero ranges) live. The
    prices are then multiplied by ``scale``: zero tests must not depend on the price level.
    """
    returns = np.asarray(returns, dtype=np.float64)
    close = 100.0 * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[100.0], close[:-1]])
    spreads = np.asarray(spreads, dtype=np.float64).reshape(-1, 2)
    high = np.maximum(open_, close) * (1.0 + spreads[:, 0])
    low = np.minimum(open_, close) * (1.0 - spreads[:, 1])
    bars = {"open": open_, "high": high, "low": low, "close": close}
    if decimals is not None:
        bars = {key: np.round(value, decimals) for key, value in bars.items()}
    bars = {key: value * scale for key, value in bars.items()}
    bars["volume"] = np.asarray(volumes, dtype=np.float64)
    return bars


@st.composite
def bars_strategy(draw, min_size: int = 1, max_size: int = 60) -> Bars:
    """Hypothesis bars: random walk with small moves, occasional flat bars and zero volume."""
    n = draw(st.integers(min_size, max_size))
    # moves are 0 or at least 1 bp, so a window is either exactly flat or clearly not: thresholds
    # such as TA-Lib's variance-is-zero band are never straddled by rounding noise
    step = st.one_of(st.just(0.0), st.floats(1e-4, 0.05), st.floats(-0.05, -1e-4))
    returns = draw(st.lists(step, min_size=n, max_size=n))
    spread = st.one_of(st.just(0.0), st.floats(0.0, 0.03, allow_nan=False))
    spreads = draw(st.lists(st.tuples(spread, spread), min_size=n, max_size=n))
    volume = st.one_of(st.just(0.0), st.integers(1, 10**6).map(float))
    volumes = draw(st.lists(volume, min_size=n, max_size=n))
    decimals = draw(st.sampled_from([None, 2, 0]))
    scale = draw(st.sampled_from([1.0, 1e-9, 1e5]))
    return make_bars(returns, spreads, volumes, decimals, scale)


def random_bars(n: int, seed: int = 0) -> Bars:
    """Deterministic, non-degenerate bars for exact-shape and warm-up checks."""
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0, 0.02, n)
    spreads = rng.uniform(0.001, 0.02, (n, 2))
    volumes = rng.integers(1_000, 100_000, n)
    return make_bars(returns, spreads, volumes, decimals=None)


def sliced(bars: Bars, rows: slice) -> Bars:
    return {key: value[rows] for key, value in bars.items()}
