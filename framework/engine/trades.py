"""Build the fills and FIFO round-trip tables of a simulation from the kernel's raw arrays.

Symbols and sides are categorical columns (codes into a fixed list): cheap for millions of
rows, and the same dtype whether or not a table is empty.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from framework.engine import _layout as layout
from framework.engine import _trades_nb as tnb

FILL_COLUMNS: tuple[str, ...] = (
    "bar",
    "time",
    "symbol",
    "qty",
    "price",
    "commission",
    "slippage_cost",
    "impact_cost",
)
TRADE_COLUMNS: tuple[str, ...] = (
    "symbol",
    "entry_time",
    "exit_time",
    "entry_bar",
    "exit_bar",
    "qty",
    "side",
    "entry_price",
    "exit_price",
    "pnl",
    "return_pct",
    "bars_held",
    "is_open",
)
SIDES: tuple[str, ...] = ("short", "long")


def fills_frame(
    fills_int: np.ndarray,
    fills_float: np.ndarray,
    index: pd.DatetimeIndex,
    symbols: tuple[str, ...],
) -> pd.DataFrame:
    """One row per fill, in execution order (see :class:`SimResult` for the columns)."""
    bars = fills_int[:, layout.F_BAR]
    return pd.DataFrame(
        {
            "bar": bars,
            "time": index[bars],
            "symbol": pd.Categorical.from_codes(fills_int[:, layout.F_ASSET], categories=symbols),
            "qty": fills_float[:, layout.F_QTY],
            "price": fills_float[:, layout.F_PRICE],
            "commission": fills_float[:, layout.F_COMMISSION],
            "slippage_cost": fills_float[:, layout.F_SLIPPAGE],
            "impact_cost": fills_float[:, layout.F_IMPACT],
        },
        columns=list(FILL_COLUMNS),
    )


def trades_frame(
    fills_int: np.ndarray,
    fills_float: np.ndarray,
    marks: np.ndarray,
    index: pd.DatetimeIndex,
    symbols: tuple[str, ...],
) -> pd.DataFrame:
    """FIFO round trips per symbol, sorted by entry bar, symbol and exit bar.

    Parameters
    ----------
    fills_int, fills_float : ndarray
        The kernel's fill records.
    marks : (m,) ndarray
        Last known price per asset, for open trades.
    index : DatetimeIndex
        Bar close times.
    symbols : tuple of str
    """
    out_int, out_float = tnb.fifo_trades_nb(
        np.ascontiguousarray(fills_int[:, layout.F_BAR]),
        np.ascontiguousarray(fills_int[:, layout.F_ASSET]),
        np.ascontiguousarray(fills_float[:, layout.F_QTY]),
        np.ascontiguousarray(fills_float[:, layout.F_PRICE]),
        np.ascontiguousarray(fills_float[:, layout.F_COMMISSION]),
        np.ascontiguousarray(marks, dtype=np.float64),
        len(index) - 1,
    )
    n, m = len(index), len(symbols)
    key = (out_int[:, tnb.R_ENTRY_BAR] * m + out_int[:, tnb.R_ASSET]) * n
    order = np.argsort(key + out_int[:, tnb.R_EXIT_BAR], kind="stable")
    out_int, out_float = out_int[order], out_float[order]
    entry_bar = out_int[:, tnb.R_ENTRY_BAR]
    exit_bar = out_int[:, tnb.R_EXIT_BAR]
    is_open = out_int[:, tnb.R_IS_OPEN].astype(bool)
    qty = out_float[:, tnb.R_QTY]
    entry_price = out_float[:, tnb.R_ENTRY_PRICE]
    pnl = out_float[:, tnb.R_PNL]
    entry_value = entry_price * qty
    with np.errstate(divide="ignore", invalid="ignore"):
        # a zero entry value (a sell priced to 0 by extreme impact) has no defined return
        return_pct = np.where(entry_value > 0, 100.0 * pnl / entry_value, np.nan)
    exit_time = index[exit_bar].where(~is_open, pd.NaT)
    return pd.DataFrame(
        {
            "symbol": pd.Categorical.from_codes(out_int[:, tnb.R_ASSET], categories=symbols),
            "entry_time": index[entry_bar],
            "exit_time": exit_time,
            "entry_bar": entry_bar,
            "exit_bar": exit_bar,
            "qty": qty,
            "side": pd.Categorical.from_codes(
                (out_float[:, tnb.R_SIDE] > 0).astype(np.int8), categories=SIDES
            ),
            "entry_price": entry_price,
            "exit_price": out_float[:, tnb.R_EXIT_PRICE],
            "pnl": pnl,
            "return_pct": return_pct,
            "bars_held": exit_bar - entry_bar,
            "is_open": is_open,
        },
        columns=list(TRADE_COLUMNS),
    )
