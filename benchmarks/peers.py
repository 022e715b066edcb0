"""Configuring the peer engines as oracles (see ``/work/shared/notes/peers.md``).

- vectorbt fills at the bar where a signal or order stands, at the ``price`` it is given: to
  get fw's "decide at close ``i``, fill at open ``i + 1``", signals and orders are shifted down
  one bar (:func:`shift_down`) and ``price=open``. Its kernels are pinned to ``engine="numba"``
  (``vectorbt-rust``, when installed, would silently become the default).
- backtrader fills market orders at the next open by default; see :mod:`benchmarks.bt_strategies`.
"""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import FEE_RATE, INITIAL_CASH
from framework.errors import FwError
from framework.types import Bars


def import_vectorbt() -> ModuleType:
    """The vectorbt module, or an ``FwError`` saying how to install it."""
    try:
        import vectorbt
    except ImportError as exc:
        raise FwError(
            f"the benchmarks need vectorbt ({exc}); install the bench extra: "
            "pip install -e '.[bench]' (or pip install vectorbt backtrader)."
        ) from exc
    return vectorbt


def import_backtrader() -> ModuleType:
    """The backtrader module, or an ``FwError`` saying how to install it."""
    try:
        import backtrader
    except ImportError as exc:
        raise FwError(
            f"the benchmarks need backtrader ({exc}); install the bench extra: "
            "pip install -e '.[bench]' (or pip install vectorbt backtrader)."
        ) from exc
    return backtrader


def vbt_portfolio_options(vbt: ModuleType, method: str = "from_signals") -> dict[str, Any]:
    """Keyword arguments shared by every vectorbt portfolio: fees, cash, frequency, engine."""
    options: dict[str, Any] = {"fees": FEE_RATE, "init_cash": INITIAL_CASH, "freq": "1D"}
    parameters = inspect.signature(getattr(vbt.Portfolio, method)).parameters
    if "engine" in parameters:
        options["engine"] = "numba"
    return options


def vbt_engine_note(vbt: ModuleType) -> str:
    """Which vectorbt and which simulation engine the figures come from."""
    parameters = inspect.signature(vbt.Portfolio.from_signals).parameters
    engine = "engine='numba' (pinned)" if "engine" in parameters else "numba (only engine)"
    return f"vectorbt {vbt.__version__}, {engine}"


def shift_down(values: np.ndarray, fill: float | bool) -> np.ndarray:
    """``values`` moved down one row (row 0 becomes ``fill``): decisions at ``i`` act at ``i + 1``."""
    out = np.empty_like(values)
    out[0] = fill
    out[1:] = values[:-1]
    return out


def series(bars: Bars, name: str, column: int = 0) -> pd.Series:
    """One field of one symbol as a Series on the bars' index."""
    return pd.Series(getattr(bars, name)[:, column], index=bars.index, name=bars.symbols[column])


def warmup_mask(n_bars: int, slow: np.ndarray) -> np.ndarray:
    """``(n, k)`` True on the rows fw forces to 0 for pair ``c``: rows ``< slow[c]``."""
    return np.arange(n_bars)[:, None] < np.asarray(slow)[None, :]
