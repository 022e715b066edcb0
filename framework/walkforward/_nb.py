"""Jitted kernel of combinatorially symmetric cross-validation (PBO); numpy + numba only.

Tested against a plain-Python reference in ``tests/framework/walkforward/test_stats.py``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

# A dispersion below 1e-6 of the root mean square is rounding noise of a constant series.
_FLAT = 1e-12


# error_model="numpy": x / 0 gives inf instead of a Python-style check, so the Sharpe loop below
# has no branch and vectorizes; the flat test then discards those values.
@njit(cache=True, error_model="numpy")
def _half_sharpes_nb(
    counts: np.ndarray,
    sums: np.ndarray,
    squares: np.ndarray,
    blocks: np.ndarray,
    previous: np.ndarray,
    running: np.ndarray,
    out: np.ndarray,
) -> None:
    """Per-trial Sharpe of the rows in ``blocks`` (one half of a combination) into ``out``.

    ``running[0 or 1, d, j]`` holds trial ``j``'s sum (or sum of squares) over the first
    ``d + 1`` blocks of ``previous``, the half last computed with this cache. Consecutive halves
    share leading blocks (combinations come in lexicographic order), so only the sums from the
    first differing block on are redone. Every running sum still adds the blocks left to right
    starting from 0.0, so the result is bit for bit that of the plain loop over all blocks.
    """
    depth = blocks.shape[0]
    start = 0
    while start < depth and blocks[start] == previous[start]:
        start += 1
    for d in range(start, depth):
        b = blocks[d]
        if d == 0:
            for j in range(sums.shape[1]):
                running[0, 0, j] = 0.0 + sums[b, j]
                running[1, 0, j] = 0.0 + squares[b, j]
        else:
            for j in range(sums.shape[1]):
                running[0, d, j] = running[0, d - 1, j] + sums[b, j]
                running[1, d, j] = running[1, d - 1, j] + squares[b, j]
        previous[d] = b
    n = 0.0
    for h in range(depth):
        n += counts[blocks[h]]
    if n < 2.0:
        out[:] = -np.inf
        return
    for j in range(sums.shape[1]):
        # per-period Sharpe (sample std) from count, sum and sum of squares; -inf if undefined
        total = running[0, depth - 1, j]
        square = running[1, depth - 1, j]
        mean = total / n
        variance = (square - total * mean) / (n - 1.0)
        value = mean / math.sqrt(variance)
        out[j] = value if variance > _FLAT * square / n else -np.inf


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


@njit(cache=True, parallel=True)
def cscv_nb(
    counts: np.ndarray,
    sums: np.ndarray,
    squares: np.ndarray,
    in_blocks: np.ndarray,
    out_blocks: np.ndarray,
    partner: np.ndarray,
    n_tasks: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logit of the OOS relative rank of the IS-best trial for every CSCV combination.

    Parameters
    ----------
    counts : (S,) float64
        Rows per block.
    sums, squares : (S, N) float64
        Per block and trial: sum and sum of squares of the returns.
    in_blocks, out_blocks : (C, S/2) int64
        Block numbers forming the in-sample and out-of-sample halves of each combination.
    partner : (C,) int64
        Index of the complementary combination (its halves swapped), or -1 when absent; a pair
        shares its two Sharpe vectors, which halves the work.
    n_tasks : int
        Pieces the combinations are cut into for the parallel loop (results do not depend on
        it; a few per thread balances the load).

    Returns
    -------
    logits, best_in_sample, best_out_of_sample : (C,) float64
        Undefined Sharpe ratios count as ``-inf`` (lowest rank); the IS-best is the first
        maximum; ranks are 1-based averages over ties; ``w = rank / (N + 1)``.
    """
    n_combos, depth = in_blocks.shape
    n_trials = sums.shape[1]
    logits = np.empty(n_combos)
    best_is = np.empty(n_combos)
    best_oos = np.empty(n_combos)
    leaders, followers = _pairs_nb(partner)
    # Contiguous runs of leaders per task keep the prefix caches useful; every value is
    # computed the same way whichever task computes it, so the thread count changes nothing.
    n_tasks = max(1, min(len(leaders), n_tasks))
    for task in prange(n_tasks):
        first = np.empty(n_trials)
        second = np.empty(n_trials)
        # one cache per half: the in-sample halves and their complements each change slowly
        previous_in = np.full(depth, -1, dtype=np.int64)
        previous_out = np.full(depth, -1, dtype=np.int64)
        running_in = np.empty((2, depth, n_trials))
        running_out = np.empty((2, depth, n_trials))
        for i in range(task * len(leaders) // n_tasks, (task + 1) * len(leaders) // n_tasks):
            c = leaders[i]
            _half_sharpes_nb(counts, sums, squares, in_blocks[c], previous_in, running_in, first)
            _half_sharpes_nb(
                counts, sums, squares, out_blocks[c], previous_out, running_out, second
            )
            logits[c], best_is[c], best_oos[c] = _logit_nb(first, second)
            other = followers[i]
            if other >= 0:
                logits[other], best_is[other], best_oos[other] = _logit_nb(second, first)
    return logits, best_is, best_oos


@njit(cache=True)
def _pairs_nb(partner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Combinations whose two halves get computed, in order, and the partner each one serves.

    A combination is a leader unless its partner came first; a leader's follower is its
    partner when present (-1 otherwise).
    """
    n_combos = partner.shape[0]
    done = np.zeros(n_combos, dtype=np.bool_)
    leaders = np.empty(n_combos, dtype=np.int64)
    followers = np.empty(n_combos, dtype=np.int64)
    count = 0
    for c in range(n_combos):
        if done[c]:
            continue
        done[c] = True
        leaders[count] = c
        followers[count] = -1
        other = partner[c]
        if other >= 0 and not done[other]:
            followers[count] = other
            done[other] = True
        count += 1
    return leaders[:count], followers[:count]
