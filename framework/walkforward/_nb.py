"""Jitted kernel of combinatorially symmetric cross-validation (PBO); numpy + numba only.

Tested against a plain-Python reference in ``tests/framework/walkforward/test_stats.py``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# A dispersion below 1e-6 of the root mean square is rounding noise of a constant series.
_FLAT = 1e-12


@njit(cache=True)
def _sharpe_nb(count: float, total: float, squares: float) -> float:
    """Per-period Sharpe (sample std) of rows known by count, sum and sum of squares; -inf if undefined."""
    if count < 2.0:
        return -np.inf
    mean = total / count
    variance = (squares - total * mean) / (count - 1.0)
    if variance <= _FLAT * squares / count:
        return -np.inf
    return mean / math.sqrt(variance)


@njit(cache=True)
def _half_sharpes_nb(
    counts: np.ndarray, sums: np.ndarray, squares: np.ndarray, blocks: np.ndarray, out: np.ndarray
) -> None:
    """Per-trial Sharpe of the rows in ``blocks`` (one half of a combination) into ``out``."""
    n = 0.0
    for h in range(blocks.shape[0]):
        n += counts[blocks[h]]
    for j in range(sums.shape[0]):
        total = 0.0
        square = 0.0
        for h in range(blocks.shape[0]):
            total += sums[j, blocks[h]]
            square += squares[j, blocks[h]]
        out[j] = _sharpe_nb(n, total, square)


@njit(cache=True)
def _logit_nb(perf_in: np.ndarray, perf_out: np.ndarray) -> tuple[float, float, float]:
    """Logit of the OOS relative rank of the first IS maximum, with its IS and OOS values."""
    best = 0
    for j in range(perf_in.shape[0]):
        if perf_in[j] > perf_in[best]:
            best = j
    picked = perf_out[best]
    below = 0.0
    ties = 0.0
    for j in range(perf_out.shape[0]):
        if perf_out[j] < picked:
            below += 1.0
        elif perf_out[j] == picked:
            ties += 1.0
    omega = (below + (ties + 1.0) / 2.0) / (perf_out.shape[0] + 1.0)
    return math.log(omega / (1.0 - omega)), perf_in[best], picked


@njit(cache=True)
def cscv_nb(
    counts: np.ndarray,
    sums: np.ndarray,
    squares: np.ndarray,
    in_blocks: np.ndarray,
    out_blocks: np.ndarray,
    partner: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logit of the OOS relative rank of the IS-best trial for every CSCV combination.

    Parameters
    ----------
    counts : (S,) float64
        Rows per block.
    sums, squares : (N, S) float64
        Per trial and block: sum and sum of squares of the returns.
    in_blocks, out_blocks : (C, S/2) int64
        Block numbers forming the in-sample and out-of-sample halves of each combination.
    partner : (C,) int64
        Index of the complementary combination (its halves swapped), or -1 when absent; a pair
        shares its two Sharpe vectors, which halves the work.

    Returns
    -------
    logits, best_in_sample, best_out_of_sample : (C,) float64
        Undefined Sharpe ratios count as ``-inf`` (lowest rank); the IS-best is the first
        maximum; ranks are 1-based averages over ties; ``w = rank / (N + 1)``.
    """
    n_combos = in_blocks.shape[0]
    logits = np.empty(n_combos)
    best_is = np.empty(n_combos)
    best_oos = np.empty(n_combos)
    done = np.zeros(n_combos, dtype=np.bool_)
    first = np.empty(sums.shape[0])
    second = np.empty(sums.shape[0])
    for c in range(n_combos):
        if done[c]:
            continue
        _half_sharpes_nb(counts, sums, squares, in_blocks[c], first)
        _half_sharpes_nb(counts, sums, squares, out_blocks[c], second)
        logits[c], best_is[c], best_oos[c] = _logit_nb(first, second)
        done[c] = True
        other = partner[c]
        if other >= 0 and not done[other]:
            logits[other], best_is[other], best_oos[other] = _logit_nb(second, first)
            done[other] = True
    return logits, best_is, best_oos
