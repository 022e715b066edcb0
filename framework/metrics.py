"""Performance metrics: one pure function per metric, the single source of numbers for reports.

Conventions follow ``empyrical`` (the empyrical-reloaded package) so figures agree with the wider
Python ecosystem, and the test suite cross-checks them to 1e-10:

- ``returns`` are simple per-period returns (``0.01`` = +1 %), a float ndarray or Series without
  NaN or inf; ``benchmark_returns`` has the same length (and the same index when both are Series).
- ``periods_per_year`` annualizes: 252 for daily bars (see :func:`infer_periods_per_year`).
- Volatility and Sharpe use the sample standard deviation (``ddof=1``) scaled by
  ``sqrt(periods_per_year)``; Sortino divides the annualized mean by empyrical's downside deviation
  ``sqrt(mean(min(r, 0)**2)) * sqrt(periods_per_year)``.
- ``cagr = (1 + total_return) ** (periods_per_year / n) - 1``; ``calmar = cagr / |max_drawdown|``;
  ``max_drawdown`` is a negative number (or 0.0), measured from a starting equity of 1 so a loss
  on the first bar counts.

Edge cases return ``nan`` rather than raising or returning ``inf`` (exceptions are noted per
function): empty input, fewer than two returns for dispersion-based ratios, and zero dispersion
(constant returns). Only :func:`sortino` (positive mean, no losing period) and
:func:`profit_factor` (profits, no losing trade) return ``inf``, as empyrical and common usage do.
Invalid input (NaN, wrong shape, mismatched lengths) raises :class:`~framework.errors.DataError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TypeAlias

import numpy as np
import pandas as pd

from framework.errors import DataError
from framework.periods import SESSION_MINUTES as SESSION_MINUTES  # re-exported
from framework.periods import TRADING_DAYS_PER_YEAR as TRADING_DAYS_PER_YEAR
from framework.periods import infer_periods_per_year as infer_periods_per_year

ArrayLike: TypeAlias = np.ndarray | pd.Series | Sequence[float]

#: Keys of :func:`summarize`, in order.
SUMMARY_KEYS: tuple[str, ...] = (
    "total_return",
    "cagr",
    "annual_volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "win_rate",
    "profit_factor",
    "n_trades",
    "avg_days_held",
    "exposure",
    "turnover",
    "total_costs",
    "benchmark_total_return",
    "benchmark_sharpe",
    "alpha",
    "beta",
)


# empyrical treats a benchmark variance below this as zero (beta undefined); we use the same cut.
_MIN_BENCHMARK_VARIANCE = 1.0e-30
_NAN = float("nan")


# -- input validation -------------------------------------------------------------------------
def _as_array(values: ArrayLike, name: str) -> np.ndarray:
    """Validate a 1-D finite numeric input and return it as a float64 ndarray."""
    if isinstance(values, pd.DataFrame):
        raise DataError(
            f"{name} must be 1-D (ndarray or Series); got a DataFrame with columns "
            f"{list(values.columns)}. Pass one column, e.g. frame['strategy']."
        )
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"{name} must be numeric; could not convert {type(values).__name__} to floats ({exc})."
        ) from exc
    if arr.ndim != 1:
        raise DataError(f"{name} must be 1-D; got shape {arr.shape}. Pass one series at a time.")
    bad = ~np.isfinite(arr)
    if bad.any():
        pos = int(np.argmax(bad))
        raise DataError(
            f"{name} contains a non-finite value {float(arr[pos])!r} at position {pos}; expected finite "
            "numbers. Drop or fill missing periods first (e.g. returns.fillna(0.0) for flat bars)."
        )
    return arr


def _check_periods_per_year(periods_per_year: float) -> float:
    if isinstance(periods_per_year, bool) or not isinstance(periods_per_year, (int, float)):
        raise DataError(
            f"periods_per_year must be a positive number; got {periods_per_year!r}. "
            "Use 252 for daily bars or framework.metrics.infer_periods_per_year(index)."
        )
    value = float(periods_per_year)
    if not (math.isfinite(value) and value > 0):
        raise DataError(
            f"periods_per_year must be a positive finite number; got {periods_per_year!r}. "
            "Use 252 for daily bars or framework.metrics.infer_periods_per_year(index)."
        )
    return value


def _is_constant(arr: np.ndarray) -> bool:
    # The sample std of identical values is mathematically 0 but numerically a ~1e-18 residue;
    # dividing by it would turn an undefined ratio into an arbitrary huge number.
    return bool(arr.max() == arr.min())


# -- return-based metrics ---------------------------------------------------------------------
def total_return(returns: ArrayLike) -> float:
    """Compounded return over the whole series: ``prod(1 + r) - 1``.

    Parameters
    ----------
    returns : ndarray or Series
        Simple per-period returns.

    Returns
    -------
    float
        ``nan`` for empty input.
    """
    arr = _as_array(returns, "returns")
    if arr.size == 0:
        return _NAN
    return float(np.prod(1.0 + arr) - 1.0)


def cagr(returns: ArrayLike, periods_per_year: float) -> float:
    """Compound annual growth rate: ``(1 + total_return) ** (periods_per_year / n) - 1``.

    Parameters
    ----------
    returns : ndarray or Series
        Simple per-period returns.
    periods_per_year : float
        Periods in a year (252 for daily bars).

    Returns
    -------
    float
        ``nan`` for empty input, and when the final equity is negative (a fractional power of a
        negative number is undefined; empyrical gives ``nan`` too). A total loss gives -1.0;
        a growth too large for a float (tiny samples annualized) gives ``inf``, as in empyrical.
    """
    ppy = _check_periods_per_year(periods_per_year)
    arr = _as_array(returns, "returns")
    if arr.size == 0:
        return _NAN
    ending = np.prod(1.0 + arr)
    if ending < 0.0:
        return _NAN
    # numpy power: an astronomically large result becomes inf (as in empyrical), not OverflowError.
    with np.errstate(over="ignore"):
        return float(np.power(ending, 1.0 / (arr.size / ppy)) - 1.0)


def annual_volatility(returns: ArrayLike, periods_per_year: float) -> float:
    """Annualized sample standard deviation: ``std(r, ddof=1) * sqrt(periods_per_year)``.

    Returns
    -------
    float
        ``nan`` with fewer than two returns; exactly 0.0 for constant returns.
    """
    ppy = _check_periods_per_year(periods_per_year)
    arr = _as_array(returns, "returns")
    if arr.size < 2:
        return _NAN
    if _is_constant(arr):
        return 0.0
    return float(np.std(arr, ddof=1) * math.sqrt(ppy))


def sharpe(returns: ArrayLike, periods_per_year: float) -> float:
    """Annualized Sharpe ratio with a zero risk-free rate: ``mean / std(ddof=1) * sqrt(ppy)``.

    Returns
    -------
    float
        ``nan`` with fewer than two returns and for constant returns (zero volatility). Here fw
        deliberately differs from empyrical, which returns ``inf`` for constant non-zero returns.
    """
    ppy = _check_periods_per_year(periods_per_year)
    arr = _as_array(returns, "returns")
    if arr.size < 2 or _is_constant(arr):
        return _NAN
    return float(np.mean(arr) / np.std(arr, ddof=1) * math.sqrt(ppy))


def downside_deviation(returns: ArrayLike, periods_per_year: float) -> float:
    """empyrical's annualized downside risk: ``sqrt(mean(min(r, 0) ** 2)) * sqrt(ppy)``.

    Every period counts in the mean (gains as zero), which is what makes it a deviation below the
    0 target rather than the standard deviation of the losing periods. ``nan`` for empty input.
    """
    ppy = _check_periods_per_year(periods_per_year)
    arr = _as_array(returns, "returns")
    if arr.size == 0:
        return _NAN
    downside = np.minimum(arr, 0.0)
    return float(np.sqrt(np.mean(downside * downside)) * math.sqrt(ppy))


def sortino(returns: ArrayLike, periods_per_year: float) -> float:
    """Annualized Sortino ratio: ``mean(r) * ppy / downside_deviation(r, ppy)``.

    Returns
    -------
    float
        ``nan`` with fewer than two returns. When no period loses money the downside deviation is
        0 and, matching empyrical, the result is ``inf`` for a positive mean and ``nan`` when all
        returns are 0.
    """
    ppy = _check_periods_per_year(periods_per_year)
    arr = _as_array(returns, "returns")
    if arr.size < 2:
        return _NAN
    mean_annual = float(np.mean(arr)) * ppy
    risk = downside_deviation(arr, ppy)
    if risk == 0.0:
        return math.inf if mean_annual > 0 else _NAN
    return mean_annual / risk


def drawdown_series(returns: ArrayLike) -> np.ndarray | pd.Series:
    """Drawdown at each period: equity over its running peak minus 1 (0 at a new high).

    Equity starts at 1 before the first return, so a first-period loss is already a drawdown
    (as in empyrical). Returns a Series with the same index for Series input, else an ndarray of
    the same length (empty for empty input).
    """
    arr = _as_array(returns, "returns")
    equity = np.cumprod(1.0 + arr)
    peak = np.maximum.accumulate(np.maximum(equity, 1.0)) if arr.size else equity
    drawdown = (equity - peak) / peak
    if isinstance(returns, pd.Series):
        return pd.Series(drawdown, index=returns.index, name="drawdown")
    return drawdown


def max_drawdown(returns: ArrayLike) -> float:
    """Largest peak-to-trough loss as a negative fraction (``-0.25`` = -25 %), like empyrical.

    Returns
    -------
    float
        0.0 when equity never falls below a previous peak; ``nan`` for empty input.
    """
    drawdown = np.asarray(drawdown_series(returns))
    if drawdown.size == 0:
        return _NAN
    return float(drawdown.min())


def calmar(returns: ArrayLike, periods_per_year: float) -> float:
    """Calmar ratio: ``cagr / |max_drawdown|`` over the whole series.

    Returns
    -------
    float
        ``nan`` for empty input, when there is no drawdown (division by zero) and when the
        ratio is not finite, matching empyrical.
    """
    worst = max_drawdown(returns)
    if not worst < 0.0:
        return _NAN
    value = cagr(returns, periods_per_year) / abs(worst)
    return value if math.isfinite(value) else _NAN


def alpha_beta(
    returns: ArrayLike, benchmark_returns: ArrayLike, periods_per_year: float
) -> tuple[float, float]:
    """Annualized alpha and beta against a benchmark, as ``empyrical.alpha_beta`` computes them.

    ``beta = cov(r, b) / var(b)`` (population moments) and
    ``alpha = (1 + mean(r - beta * b)) ** ppy - 1``.

    Parameters
    ----------
    returns, benchmark_returns : ndarray or Series
        Same length; when both are Series their indexes must be equal (align them first).
    periods_per_year : float
        Periods in a year (252 for daily bars).

    Returns
    -------
    tuple of float
        ``(alpha, beta)``; both ``nan`` with fewer than two returns or a constant benchmark
        (where empyrical divides by the rounding residue of the mean and may return a number).
    """
    ppy = _check_periods_per_year(periods_per_year)
    arr, bench = _paired(returns, benchmark_returns)
    if arr.size < 2 or _is_constant(bench):
        return _NAN, _NAN
    residual = bench - np.mean(bench)
    variance = float(np.mean(residual * residual))
    if variance < _MIN_BENCHMARK_VARIANCE:
        return _NAN, _NAN
    beta = float(np.mean(residual * arr)) / variance
    # numpy power: overflow gives inf and a negative base gives a real number or nan (empyrical's
    # behaviour), where Python's ** would raise OverflowError or return a complex number.
    with np.errstate(over="ignore", invalid="ignore"):
        alpha = np.power(1.0 + np.mean(arr - beta * bench), ppy) - 1.0
    return float(alpha), beta


def _paired(returns: ArrayLike, benchmark_returns: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    arr = _as_array(returns, "returns")
    bench = _as_array(benchmark_returns, "benchmark_returns")
    if arr.size != bench.size:
        raise DataError(
            f"returns has {arr.size} periods but benchmark_returns has {bench.size}; expected the "
            "same length. Align them first, e.g. benchmark_returns.reindex(returns.index)."
        )
    both_series = isinstance(returns, pd.Series) and isinstance(benchmark_returns, pd.Series)
    if both_series and not returns.index.equals(benchmark_returns.index):
        raise DataError(
            "returns and benchmark_returns have different indexes (first "
            f"{returns.index[:1].tolist()} vs {benchmark_returns.index[:1].tolist()}); expected "
            "identical labels. Align them, e.g. with returns.align(benchmark_returns, join='inner')."
        )
    return arr, bench


# -- trade and activity metrics -------------------------------------------------------------
def win_rate(trade_pnls: ArrayLike) -> float:
    """Fraction of trades with a strictly positive P&L (a break-even trade is not a win).

    ``nan`` when there are no trades.
    """
    pnl = _as_array(trade_pnls, "trade_pnls")
    if pnl.size == 0:
        return _NAN
    return float(np.count_nonzero(pnl > 0.0) / pnl.size)


def profit_factor(trade_pnls: ArrayLike) -> float:
    """Gross profit over gross loss: ``sum(pnl > 0) / |sum(pnl < 0)|``.

    Returns
    -------
    float
        ``nan`` when there are no trades or every trade broke even exactly (0/0); ``inf`` when
        there are profits and no losing trade.
    """
    pnl = _as_array(trade_pnls, "trade_pnls")
    if pnl.size == 0:
        return _NAN
    gross_profit = float(pnl[pnl > 0.0].sum())
    gross_loss = float(-pnl[pnl < 0.0].sum())
    if gross_loss == 0.0:
        return math.inf if gross_profit > 0.0 else _NAN
    return gross_profit / gross_loss


def expectancy(trade_pnls: ArrayLike) -> float:
    """Mean P&L per trade (in the trades' currency); ``nan`` when there are no trades."""
    pnl = _as_array(trade_pnls, "trade_pnls")
    if pnl.size == 0:
        return _NAN
    return float(np.mean(pnl))


def avg_days_held(holding_days: ArrayLike) -> float:
    """Mean holding period in (possibly fractional) calendar days; ``nan`` when empty.

    Raises :class:`~framework.errors.DataError` for a negative duration (exit before entry).
    """
    days = _as_array(holding_days, "holding_days")
    if days.size == 0:
        return _NAN
    if (days < 0.0).any():
        pos = int(np.argmax(days < 0.0))
        raise DataError(
            f"holding_days has a negative duration {float(days[pos])!r} at position {pos}; expected >= 0. "
            "Check that exit_time is not before entry_time."
        )
    return float(np.mean(days))


def exposure(gross_exposure: ArrayLike) -> float:
    """Mean gross exposure per bar, as a fraction of equity.

    Gross exposure of a bar is ``sum(|position value|) / equity``: 1.0 fully invested, 0.5 half,
    2.0 for 2x gross leverage (long plus short). The mean over all bars therefore combines time in
    the market and sizing; the share of bars with any position is ``mean(gross_exposure > 0)``.

    Returns
    -------
    float
        ``nan`` for empty input. Negative values raise :class:`~framework.errors.DataError`.
    """
    gross = _as_array(gross_exposure, "gross_exposure")
    if gross.size == 0:
        return _NAN
    if (gross < 0.0).any():
        pos = int(np.argmax(gross < 0.0))
        raise DataError(
            f"gross_exposure has a negative value {float(gross[pos])!r} at position {pos}; gross exposure "
            "is sum(|position value|) / equity and cannot be negative. Pass absolute exposures."
        )
    return float(np.mean(gross))


def turnover(traded_value: ArrayLike, equity: ArrayLike, periods_per_year: float) -> float:
    """Annualized one-way turnover: ``sum(|traded_value|) / mean(equity) / years``.

    Parameters
    ----------
    traded_value : ndarray or Series
        Value traded in each bar (buys and sells both count, sign ignored), same currency as
        ``equity``.
    equity : ndarray or Series
        Account equity per bar, same length; ``years = len(equity) / periods_per_year``.
    periods_per_year : float
        Periods in a year (252 for daily bars).

    Returns
    -------
    float
        1.0 means the book was traded once per year. ``nan`` for empty input or when the mean
        equity is not positive (turnover relative to a wiped-out account is meaningless).
    """
    ppy = _check_periods_per_year(periods_per_year)
    traded = _as_array(traded_value, "traded_value")
    equity_arr = _as_array(equity, "equity")
    if traded.size != equity_arr.size:
        raise DataError(
            f"traded_value has {traded.size} bars but equity has {equity_arr.size}; expected one "
            "value of each per bar (use 0.0 for bars without trades)."
        )
    if equity_arr.size == 0:
        return _NAN
    mean_equity = float(np.mean(equity_arr))
    if not mean_equity > 0.0:
        return _NAN
    years = equity_arr.size / ppy
    return float(np.abs(traded).sum() / mean_equity / years)


# -- summary ----------------------------------------------------------------------------------
def summarize(
    returns: ArrayLike,
    benchmark_returns: ArrayLike | None,
    trades: pd.DataFrame,
    *,
    periods_per_year: float,
    gross_exposure: ArrayLike | None = None,
    traded_value: ArrayLike | None = None,
    equity: ArrayLike | None = None,
    costs: Mapping[str, float] | None = None,
) -> dict[str, float | int]:
    """All headline metrics of a run as a JSON-serializable dict (keys: :data:`SUMMARY_KEYS`).

    Parameters
    ----------
    returns : ndarray or Series
        Strategy simple returns per bar.
    benchmark_returns : ndarray or Series or None
        Benchmark returns, same bars; ``None`` makes the benchmark keys ``nan``.
    trades : DataFrame
        One row per trade with at least ``pnl`` (net), ``entry_time`` and ``exit_time`` (NaT while
        open). Only closed trades count for ``n_trades``, ``win_rate``, ``profit_factor`` and
        ``avg_days_held`` (calendar days from entry to exit, fractional for intraday trades).
    periods_per_year : float
        Periods in a year (252 for daily bars).
    gross_exposure : ndarray or Series, optional
        Gross exposure per bar as a fraction of equity; ``exposure`` is its mean (see
        :func:`exposure`). ``nan`` when omitted.
    traded_value : ndarray or Series, optional
        Value traded per bar, for ``turnover``. ``nan`` when omitted.
    equity : ndarray or Series, optional
        Equity per bar in the currency of ``traded_value``. When omitted it is the growth of one
        unit, ``cumprod(1 + returns)``, so ``traded_value`` must then be in multiples of the
        starting equity.
    costs : mapping of str to number (or array), optional
        Cost components of the run (e.g. ``{"commission": 12.0, "slippage": 30.5}``);
        ``total_costs`` is their sum. ``nan`` when omitted (unknown, not zero).

    Returns
    -------
    dict
        Python ``float`` values (``n_trades`` is an ``int``). Undefined values are
        ``float('nan')`` and an unbounded profit factor is ``float('inf')``; serialize with
        ``json.dumps(summary, allow_nan=True)``.
    """
    ppy = _check_periods_per_year(periods_per_year)
    arr = _as_array(returns, "returns")
    pnl, held_days = _closed_trades(trades)
    summary: dict[str, float | int] = {
        "total_return": total_return(arr),
        "cagr": cagr(arr, ppy),
        "annual_volatility": annual_volatility(arr, ppy),
        "sharpe": sharpe(arr, ppy),
        "sortino": sortino(arr, ppy),
        "max_drawdown": max_drawdown(arr),
        "calmar": calmar(arr, ppy),
        "win_rate": win_rate(pnl),
        "profit_factor": profit_factor(pnl),
        "n_trades": int(pnl.size),
        "avg_days_held": avg_days_held(held_days),
        "exposure": _NAN if gross_exposure is None else exposure(gross_exposure),
        "turnover": _turnover_of_run(arr, traded_value, equity, ppy),
        "total_costs": _total_costs(costs),
    }
    if benchmark_returns is None:
        bench_total, bench_sharpe, alpha, beta = _NAN, _NAN, _NAN, _NAN
    else:
        _, bench = _paired(returns, benchmark_returns)
        bench_total, bench_sharpe = total_return(bench), sharpe(bench, ppy)
        alpha, beta = alpha_beta(arr, bench, ppy)
    summary.update(
        benchmark_total_return=bench_total, benchmark_sharpe=bench_sharpe, alpha=alpha, beta=beta
    )
    return {key: summary[key] for key in SUMMARY_KEYS}


def _closed_trades(trades: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Net P&L and calendar days held of the closed trades (``exit_time`` not NaT)."""
    if not isinstance(trades, pd.DataFrame):
        raise DataError(
            f"trades must be a DataFrame with columns pnl, entry_time, exit_time; got "
            f"{type(trades).__name__}. Pass an empty DataFrame with those columns for no trades."
        )
    missing = [c for c in ("pnl", "entry_time", "exit_time") if c not in trades.columns]
    if missing:
        raise DataError(
            f"trades lacks columns {missing}; expected at least pnl, entry_time, exit_time "
            f"(got {list(trades.columns)})."
        )
    try:
        exit_time = pd.to_datetime(trades["exit_time"])
        entry_time = pd.to_datetime(trades["entry_time"])
        closed = exit_time.notna().to_numpy()
        held = (exit_time[closed] - entry_time[closed]) / pd.Timedelta(days=1)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"trades entry_time/exit_time must be timestamps of one kind (all UTC or all naive); "
            f"could not compute holding periods ({exc})."
        ) from exc
    held_days = held.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isnan(held_days).any():
        row = trades.index[closed][int(np.argmax(np.isnan(held_days)))]
        raise DataError(
            f"trade at row {row!r} has an exit_time but no entry_time; every closed trade needs "
            "both. Fill entry_time or drop the row."
        )
    pnl = _as_array(trades["pnl"].to_numpy(dtype=np.float64)[closed], "trades.pnl (closed trades)")
    return pnl, held_days


def _turnover_of_run(
    returns: np.ndarray,
    traded_value: ArrayLike | None,
    equity: ArrayLike | None,
    periods_per_year: float,
) -> float:
    if traded_value is None:
        return _NAN
    equity_arr = np.cumprod(1.0 + returns) if equity is None else equity
    return turnover(traded_value, equity_arr, periods_per_year)


def _total_costs(costs: Mapping[str, float] | None) -> float:
    if costs is None:
        return _NAN
    if not isinstance(costs, Mapping):
        raise DataError(
            f"costs must be a mapping of cost name to amount, e.g. {{'commission': 12.0}}; got "
            f"{type(costs).__name__}."
        )
    total = 0.0
    for name, amount in costs.items():
        values = _as_array(np.ravel(amount), f"costs[{name!r}]")
        total += float(values.sum())
    return total
