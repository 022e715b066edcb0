"""Indicator speed: fw (numba, whole 2-D array) vs TA-Lib (one call per column) vs pandas.

Run with ``python -m benchmarks.indicators_bench`` (``--help`` for options). The panel is
``columns x bars`` of real daily bars from ``daily_sp500_2000_2024`` (the last ``bars`` rows;
symbols are reused when there are fewer files than columns; late listings keep their leading
NaNs, which all three libraries skip), or a generated random walk when that folder is absent.

Each timing is the best of ``--repeats`` runs after one untimed warm-up call (numba compiles or
loads its cache there). The panel is column-major (each column contiguous, as a
``DataFrame.to_numpy()`` panel usually is); "fw C-in" times the same call on a row-major copy,
which the wrapper first converts (a transposing copy). TA-Lib is 1-D, so it loops over the
contiguous columns (the split into columns is not timed). pandas runs on the whole DataFrame; its EMA/RSI/ATR/ADX use ``ewm(adjust=False)``,
whose seeding differs from TA-Lib's, so only fw is checked against TA-Lib (last column).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

import framework.indicators as fi

DEFAULT_FOLDER = Path(__file__).resolve().parents[1].parent / "shared" / "data"
Panel = dict[str, np.ndarray]


def load_panel(folder: Path, columns: int, bars: int) -> tuple[Panel, str]:
    """High/low/close ``(bars, columns)`` arrays and a description of where they came from."""
    files = sorted((folder / "daily_sp500_2000_2024").glob("*.csv.gz"))
    if not files:
        return generated_panel(columns, bars), f"generated random walk (no files in {folder})"
    fields = {"high": {}, "low": {}, "close": {}}
    for path in files[:columns]:
        frame = pd.read_csv(path, usecols=["date", "high", "low", "close"], index_col="date")
        for field, series in fields.items():
            series[path.name.split(".")[0]] = frame[field]
    panel = {}
    for field, series in fields.items():
        wide = pd.concat(series, axis=1).sort_index().iloc[-bars:].to_numpy(dtype=np.float64)
        reuse = np.arange(columns) % wide.shape[1]  # fewer files than columns: reuse symbols
        panel[field] = np.asfortranarray(wide[:, reuse])
    source = (
        f"real daily bars, {min(len(files), columns)} symbols of daily_sp500_2000_2024 "
        f"(reused to {columns} columns), last {panel['close'].shape[0]} dates"
    )
    return panel, source


def generated_panel(columns: int, bars: int, seed: int = 0) -> Panel:
    """Random-walk OHLC bars, used when the real data folder is missing."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.015, (bars, columns)), axis=0))
    spread = rng.uniform(0.0, 0.02, (bars, columns))
    panel = {"high": close * (1 + spread), "low": close * (1 - spread), "close": close}
    return {key: np.asfortranarray(value) for key, value in panel.items()}


def pandas_rsi(close: pd.DataFrame, window: int) -> pd.DataFrame:
    change = close.diff()
    gain = change.clip(lower=0).ewm(alpha=1 / window, adjust=False).mean()
    loss = (-change).clip(lower=0).ewm(alpha=1 / window, adjust=False).mean()
    return 100 * gain / (gain + loss)


def pandas_true_range(high, low, close) -> pd.DataFrame:
    previous = close.shift(1)
    return np.maximum(np.maximum(high - low, (high - previous).abs()), (low - previous).abs())


def pandas_adx(high, low, close, window: int) -> pd.DataFrame:
    up, down = high.diff(), -low.diff()
    plus_dm = up.where((up > down) & (up > 0), 0.0)
    minus_dm = down.where((down > up) & (down > 0), 0.0)
    smooth = {"alpha": 1 / window, "adjust": False}
    tr = pandas_true_range(high, low, close).ewm(**smooth).mean()
    plus_di = 100 * plus_dm.ewm(**smooth).mean() / tr
    minus_di = 100 * minus_dm.ewm(**smooth).mean() / tr
    dx = 100 * (plus_di - minus_di).abs() / (plus_di + minus_di)
    return dx.ewm(**smooth).mean()


def pandas_bollinger(close: pd.DataFrame, window: int):
    middle = close.rolling(window).mean()
    std = close.rolling(window).std(ddof=0)
    return middle + 2 * std, middle, middle - 2 * std


def cases(talib) -> dict[str, tuple[Callable, Callable, Callable]]:
    """(fw on 2-D arrays, TA-Lib on one column's 1-D arrays, pandas on DataFrames) per row."""
    return {
        "SMA(20)": (
            lambda p: fi.sma(p["close"], 20),
            lambda c: talib.SMA(c["close"], 20),
            lambda d: d["close"].rolling(20).mean(),
        ),
        "EMA(20)": (
            lambda p: fi.ema(p["close"], 20),
            lambda c: talib.EMA(c["close"], 20),
            lambda d: d["close"].ewm(span=20, adjust=False).mean(),
        ),
        "RSI(14)": (
            lambda p: fi.rsi(p["close"], 14),
            lambda c: talib.RSI(c["close"], 14),
            lambda d: pandas_rsi(d["close"], 14),
        ),
        "ATR(14)": (
            lambda p: fi.atr(p["high"], p["low"], p["close"], 14),
            lambda c: talib.ATR(c["high"], c["low"], c["close"], 14),
            lambda d: (
                pandas_true_range(d["high"], d["low"], d["close"])
                .ewm(alpha=1 / 14, adjust=False)
                .mean()
            ),
        ),
        "Bollinger(20, 2)": (
            lambda p: fi.bollinger_bands(p["close"], 20, 2.0)[0],
            lambda c: talib.BBANDS(c["close"], 20, 2.0, 2.0, 0)[0],
            lambda d: pandas_bollinger(d["close"], 20)[0],
        ),
        "ADX(14)": (
            lambda p: fi.adx(p["high"], p["low"], p["close"], 14).adx,
            lambda c: talib.ADX(c["high"], c["low"], c["close"], 14),
            lambda d: pandas_adx(d["high"], d["low"], d["close"], 14),
        ),
    }


def best_of(function: Callable[[], object], repeats: int) -> tuple[float, object]:
    result = function()  # warm-up: numba compile / cache load, pandas first-call overheads
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def run(panel: Panel, repeats: int) -> list[dict[str, object]]:
    """Time every case; also report fw's largest relative difference to TA-Lib."""
    import talib  # test/bench extra: pip install "ta-lib>=0.6,<1"

    columns = [
        {key: np.ascontiguousarray(value[:, j]) for key, value in panel.items()}
        for j in range(panel["close"].shape[1])
    ]
    frames = {key: pd.DataFrame(value) for key, value in panel.items()}
    row_major = {key: np.ascontiguousarray(value) for key, value in panel.items()}
    rows = []
    for name, (ours, theirs, pandas_call) in cases(talib).items():
        fw_seconds, fw_out = best_of(lambda ours=ours: ours(panel), repeats)
        fw_c_seconds, _ = best_of(lambda ours=ours: ours(row_major), repeats)
        ta_seconds, ta_out = best_of(
            lambda theirs=theirs: [theirs(column) for column in columns], repeats
        )
        pd_seconds, _ = best_of(lambda call=pandas_call: call(frames), repeats)
        reference = np.column_stack(ta_out)
        finite = ~np.isnan(reference)
        assert np.array_equal(np.isnan(fw_out), ~finite), f"{name}: warm-up differs from TA-Lib"
        scale = np.maximum(np.abs(reference[finite]), 1e-300)  # RSI/ATR can be exactly 0
        difference = np.abs(fw_out[finite] - reference[finite]) / scale
        rows.append(
            {
                "indicator": name,
                "fw": fw_seconds,
                "fw_c": fw_c_seconds,
                "talib": ta_seconds,
                "pandas": pd_seconds,
                "max_rel_diff": float(difference.max(initial=0.0)),
            }
        )
    return rows


def format_table(rows: list[dict[str, object]]) -> str:
    header = (
        f"{'indicator':<18}{'fw s':>9}{'fw C-in s':>11}{'TA-Lib s':>10}{'pandas s':>10}"
        f"{'TA-Lib/fw':>11}{'pandas/fw':>11}{'max rel diff':>14}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        fw_s, ta_s, pd_s = row["fw"], row["talib"], row["pandas"]
        lines.append(
            f"{row['indicator']:<18}{fw_s:>9.4f}{row['fw_c']:>11.4f}{ta_s:>10.4f}{pd_s:>10.4f}"
            f"{ta_s / fw_s:>10.1f}x{pd_s / fw_s:>10.1f}x{row['max_rel_diff']:>14.1e}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", type=int, default=500)
    parser.add_argument("--bars", type=int, default=6000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data", type=Path, default=DEFAULT_FOLDER, help="shared data folder")
    args = parser.parse_args(argv)
    panel, source = load_panel(args.data, args.columns, args.bars)
    shape = panel["close"].shape
    print(f"panel: {shape[0]} bars x {shape[1]} columns; {source}")
    load = os.getloadavg()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} cpus)")
    rows = run(panel, args.repeats)
    print(format_table(rows))
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
