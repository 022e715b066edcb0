"""Overfitting statistics of a walk-forward optimization.

- :func:`walk_forward_efficiency`: how much of the in-sample return survives out of sample.
- :func:`parameter_stability`: how much the chosen parameters move from fold to fold.
- :func:`deflated_sharpe_ratio` (Bailey and Lopez de Prado 2014, "The Deflated Sharpe Ratio:
  Correcting for Selection Bias, Backtest Overfitting and Non-Normality"): the probability that
  the true Sharpe ratio exceeds the best one expected from ``N`` unskilled trials.
- :func:`probability_of_backtest_overfitting` (Bailey, Borwein, Lopez de Prado and Zhu 2015,
  "The Probability of Backtest Overfitting"), by combinatorially symmetric cross-validation.

Sharpe ratios here are **per period** (not annualized), as in both papers: ``mean / std`` of
simple per-bar returns with the sample standard deviation (``ddof=1``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numba
import numpy as np
import pandas as pd

from framework.errors import DataError, ParameterError
from framework.walkforward._nb import cscv_nb

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


# -- walk-forward efficiency and parameter stability -------------------------------------------
def walk_forward_efficiency(
    in_sample_annual_returns: Sequence[float], out_of_sample_annual_returns: Sequence[float]
) -> float:
    """Ratio of means: mean OOS annualized return over mean IS annualized return across folds.

    ``WFE = mean_k(oos_k) / mean_k(is_k)`` over the folds where both numbers are finite, with
    ``is_k`` the annualized return (CAGR) of the chosen parameters on fold ``k``'s in-sample
    window and ``oos_k`` the annualized return of the stitched out-of-sample run over fold
    ``k``'s test window. The ratio of means is used (not the mean of per-fold ratios) because a
    single fold with an in-sample return near zero would make a per-fold ratio explode. 1.0 means
    the out-of-sample return matched the in-sample one; Pardo's rule of thumb wants >= 0.5.

    Returns
    -------
    float
        ``nan`` when no fold has both numbers or the mean in-sample return is <= 0 (an
        optimization that lost money in sample has no efficiency to speak of).
    """
    is_arr = np.asarray(in_sample_annual_returns, dtype=np.float64)
    oos_arr = np.asarray(out_of_sample_annual_returns, dtype=np.float64)
    if is_arr.shape != oos_arr.shape:
        raise DataError(
            f"walk_forward_efficiency needs one IS and one OOS return per fold; got "
            f"{is_arr.size} and {oos_arr.size}."
        )
    both = np.isfinite(is_arr) & np.isfinite(oos_arr)
    if not both.any():
        return math.nan
    mean_is = float(np.mean(is_arr[both]))
    if not mean_is > 0.0:
        return math.nan
    return float(np.mean(oos_arr[both]) / mean_is)


def parameter_stability(chosen: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """How stable each chosen parameter is across folds.

    Parameters
    ----------
    chosen : sequence of mappings
        The parameters chosen in each fold (``Params.as_dict()``), in fold order.

    Returns
    -------
    DataFrame
        One row per parameter: ``mode`` (most frequent value; ties go to the one chosen first),
        ``mode_fraction`` (share of folds whose choice equals the mode), ``n_distinct``, and for
        numeric (non-boolean) parameters ``mean``, ``std`` (population, ``ddof=0``) and ``cv`` =
        ``std / |mean|`` (coefficient of variation; ``nan`` when the mean is 0 or the parameter
        is not numeric).
    """
    columns = ["mode", "mode_fraction", "n_distinct", "mean", "std", "cv"]
    if not chosen:
        return pd.DataFrame(columns=columns)
    rows = {}
    for name in chosen[0]:
        values = [c[name] for c in chosen]
        counts: dict[Any, int] = {}
        for v in values:
            counts[v] = counts.get(v, 0) + 1
        mode = max(counts, key=lambda v: counts[v])  # first-seen wins ties (dicts keep order)
        row: dict[str, Any] = {
            "mode": mode,
            "mode_fraction": counts[mode] / len(values),
            "n_distinct": len(counts),
            "mean": math.nan,
            "std": math.nan,
            "cv": math.nan,
        }
        if all(
            isinstance(v, int | float | np.number) and not isinstance(v, bool | np.bool_)
            for v in values
        ):
            arr = np.asarray(values, dtype=np.float64)
            row["mean"], row["std"] = float(arr.mean()), float(arr.std(ddof=0))
            row["cv"] = row["std"] / abs(row["mean"]) if row["mean"] != 0 else math.nan
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns)


# -- deflated Sharpe ratio ---------------------------------------------------------------------
def per_period_sharpe(returns: np.ndarray) -> float:
    """``mean / std(ddof=1)`` of per-period returns; ``nan`` for < 2 values or zero dispersion."""
    arr = np.asarray(returns, dtype=np.float64)
    if arr.size < 2 or arr.max() == arr.min():
        return math.nan
    return float(arr.mean() / arr.std(ddof=1))


def per_period_sharpe_columns(returns: np.ndarray) -> np.ndarray:
    """:func:`per_period_sharpe` of every column of an ``(n, k)`` matrix, vectorized."""
    arr = np.asarray(returns, dtype=np.float64)
    out = np.full(arr.shape[1], math.nan)
    if arr.shape[0] < 2:
        return out
    defined = arr.max(axis=0) != arr.min(axis=0)
    out[defined] = arr[:, defined].mean(axis=0) / arr[:, defined].std(axis=0, ddof=1)
    return out


def skewness_kurtosis(returns: np.ndarray) -> tuple[float, float]:
    """Sample skewness and (non-excess) kurtosis from population moments (normal: 0 and 3)."""
    arr = np.asarray(returns, dtype=np.float64)
    centred = arr - arr.mean()
    m2 = float(np.mean(centred**2))
    if arr.size < 2 or m2 == 0.0:
        return math.nan, math.nan
    return float(np.mean(centred**3)) / m2**1.5, float(np.mean(centred**4)) / m2**2


def expected_max_sharpe(sharpe_variance: float, n_trials: int) -> float:
    """Expected maximum Sharpe ratio of ``n_trials`` independent zero-skill trials.

    ``E[max SR] = sqrt(V) * ((1 - g) * Z^-1(1 - 1/N) + g * Z^-1(1 - 1/(N e)))`` with ``g`` the
    Euler-Mascheroni constant and ``Z^-1`` the standard normal quantile (Bailey and Lopez de
    Prado 2014, eq. 6). 0.0 for a single trial (nothing was selected).
    """
    if n_trials < 1:
        raise ParameterError(f"n_trials must be >= 1; got {n_trials}.")
    if not sharpe_variance >= 0.0:
        raise ParameterError(f"sharpe_variance must be >= 0; got {sharpe_variance}.")
    if n_trials == 1:
        return 0.0
    quantile_a = _NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    quantile_b = _NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(sharpe_variance) * (
        (1.0 - EULER_GAMMA) * quantile_a + EULER_GAMMA * quantile_b
    )


def probabilistic_sharpe_ratio(
    sharpe: float, benchmark_sharpe: float, n_periods: int, skewness: float, kurtosis: float
) -> float:
    """Probability that the true Sharpe ratio exceeds ``benchmark_sharpe`` (all per period).

    ``PSR = Phi((SR - SR*) * sqrt(T - 1) / sqrt(1 - skew * SR + (kurt - 1) / 4 * SR^2))``
    (Bailey and Lopez de Prado 2012), with ``kurt`` the non-excess kurtosis (3 for a normal).
    """
    if n_periods < 2 or not all(
        math.isfinite(x) for x in (sharpe, benchmark_sharpe, skewness, kurtosis)
    ):
        return math.nan
    denominator = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if denominator <= 0.0:
        return math.nan
    z = (sharpe - benchmark_sharpe) * math.sqrt(n_periods - 1) / math.sqrt(denominator)
    return _NORMAL.cdf(z)


@dataclass(frozen=True)
class DeflatedSharpe:
    """The deflated Sharpe ratio and what went into it (Sharpe ratios per period)."""

    dsr: float
    sharpe: float
    expected_max_sharpe: float
    sharpe_variance: float
    n_trials: int
    n_periods: int
    skewness: float
    kurtosis: float


def deflated_sharpe_ratio(
    selected_returns: np.ndarray,
    trial_sharpes: Sequence[float] = (),
    n_trials: int | None = None,
    sharpe_variance: float | None = None,
) -> DeflatedSharpe:
    """Deflated Sharpe ratio of the selected strategy's returns given the trials that were run.

    Parameters
    ----------
    selected_returns : ndarray
        Per-period returns of the selected strategy (skewness, kurtosis and ``T`` come from it).
    trial_sharpes : sequence of float
        Per-period Sharpe ratios of every trial; their sample variance (``ddof=1``, ``nan``
        ignored) is ``V[SR]`` unless ``sharpe_variance`` is given.
    n_trials : int, optional
        ``N``; defaults to the number of trial Sharpe ratios given.
    sharpe_variance : float, optional
        ``V[SR]`` computed by the caller (e.g. averaged within walk-forward folds).

    Returns
    -------
    DeflatedSharpe
        ``dsr = PSR(SR0 = expected_max_sharpe(V, N))``; ``nan`` when undefined.
    """
    returns = np.asarray(selected_returns, dtype=np.float64)
    sharpes = np.asarray(trial_sharpes, dtype=np.float64)
    sharpes = sharpes[np.isfinite(sharpes)]
    n = int(n_trials if n_trials is not None else sharpes.size)
    if sharpe_variance is None:
        sharpe_variance = float(np.var(sharpes, ddof=1)) if sharpes.size >= 2 else 0.0
    sr0 = expected_max_sharpe(sharpe_variance, max(n, 1))
    sr = per_period_sharpe(returns)
    skew, kurt = skewness_kurtosis(returns)
    dsr = probabilistic_sharpe_ratio(sr, sr0, returns.size, skew, kurt)
    return DeflatedSharpe(dsr, sr, sr0, sharpe_variance, n, int(returns.size), skew, kurt)


# -- probability of backtest overfitting (CSCV) -------------------------------------------------
@dataclass(frozen=True)
class PboResult:
    """Outcome of CSCV.

    Attributes
    ----------
    pbo : float
        Fraction of combinations whose in-sample-best trial ranks at or below the out-of-sample
        median (logit <= 0).
    logits : ndarray
        ``log(w / (1 - w))`` per combination, ``w`` = OOS relative rank of the IS-best trial.
    best_in_sample, best_out_of_sample : ndarray
        Per combination: the IS Sharpe of the IS-best trial and its OOS Sharpe (per period;
        ``-inf`` where undefined).
    n_blocks, n_trials, n_combinations : int
    """

    pbo: float
    logits: np.ndarray
    best_in_sample: np.ndarray
    best_out_of_sample: np.ndarray
    n_blocks: int
    n_trials: int
    n_combinations: int


def cscv_combinations(
    n_blocks: int, max_combinations: int | None = None, seed: int = 0
) -> np.ndarray:
    """Block numbers of the in-sample half of each CSCV combination, ``(C, S/2)`` int64.

    All ``C(S, S/2)`` combinations in lexicographic order, or a seeded random subset of
    ``max_combinations`` of them (kept in that order).
    """
    combos = np.array(list(itertools.combinations(range(n_blocks), n_blocks // 2)), dtype=np.int64)
    if max_combinations is not None and len(combos) > max_combinations:
        rng = np.random.default_rng(seed)
        combos = combos[np.sort(rng.choice(len(combos), size=max_combinations, replace=False))]
    return combos


def _partners(in_blocks: np.ndarray, out_blocks: np.ndarray) -> np.ndarray:
    """For each combination, the index of the one with its halves swapped (-1 when absent)."""
    weights = 2 ** np.arange(in_blocks.shape[1] * 2, dtype=np.int64)  # a half as a bit set
    keys_in, keys_out = weights[in_blocks].sum(axis=1), weights[out_blocks].sum(axis=1)
    order = np.argsort(keys_in, kind="stable")
    where = np.minimum(np.searchsorted(keys_in[order], keys_out), len(order) - 1)
    return np.where(keys_in[order][where] == keys_out, order[where], -1).astype(np.int64)


def _complements(combos: np.ndarray, n_blocks: int) -> np.ndarray:
    mask = np.ones((len(combos), n_blocks), dtype=bool)
    np.put_along_axis(mask, combos, False, axis=1)
    return np.nonzero(mask)[1].reshape(len(combos), -1).astype(np.int64)


def probability_of_backtest_overfitting(
    returns: np.ndarray, n_blocks: int = 16, max_combinations: int | None = None, seed: int = 0
) -> PboResult:
    """PBO by combinatorially symmetric cross-validation (Bailey et al. 2015).

    The ``T x N`` matrix of per-period returns of ``N`` trials is cut into ``S = n_blocks``
    contiguous row blocks (``numpy.array_split``: sizes differ by at most one). For every one of
    the ``C(S, S/2)`` ways to pick half the blocks as in-sample (the rest out-of-sample), the
    trial with the best in-sample Sharpe ratio is found (first one on ties) and its out-of-sample
    relative rank ``w = rank / (N + 1)`` (average rank on ties, ``nan`` Sharpe lowest) gives the
    logit ``log(w / (1 - w))``. PBO is the fraction of logits ``<= 0``.

    Parameters
    ----------
    returns : ndarray
        ``(T, N)`` per-period returns, one column per trial, no NaN.
    n_blocks : int
        ``S``, even, at least 2 and at most ``T``.
    max_combinations : int, optional
        Use a seeded random subset of this many combinations when there are more.
    seed : int
        Seed of that subset (the result is deterministic).
    """
    matrix = np.asarray(returns, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] < 2:
        raise DataError(
            f"PBO needs a (T, N) return matrix with at least 2 trials; got shape {matrix.shape}."
        )
    if not np.isfinite(matrix).all():
        raise DataError("PBO return matrix contains NaN or inf; fill flat periods with 0.0 first.")
    if n_blocks < 2 or n_blocks % 2 or n_blocks > matrix.shape[0]:
        raise ParameterError(
            f"PBO n_blocks must be even, >= 2 and <= the {matrix.shape[0]} periods; got {n_blocks}."
        )
    blocks = np.array_split(np.arange(matrix.shape[0]), n_blocks)
    counts = np.array([len(b) for b in blocks], dtype=np.float64)
    # (S, N): the kernel's inner loop runs over the trials of one block
    sums = np.array([matrix[b].sum(axis=0) for b in blocks])
    squares = np.array([(matrix[b] ** 2).sum(axis=0) for b in blocks])
    in_blocks = cscv_combinations(n_blocks, max_combinations, seed)
    out_blocks = _complements(in_blocks, n_blocks)
    logits, best_is, best_oos = cscv_nb(
        counts,
        sums,
        squares,
        in_blocks,
        out_blocks,
        _partners(in_blocks, out_blocks),
        4 * numba.get_num_threads(),
    )
    return PboResult(
        pbo=float(np.mean(logits <= 0.0)),
        logits=logits,
        best_in_sample=best_is,
        best_out_of_sample=best_oos,
        n_blocks=n_blocks,
        n_trials=matrix.shape[1],
        n_combinations=len(logits),
    )
