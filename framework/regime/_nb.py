"""Numba kernels of the regime package: minimum-duration hysteresis and HMM forward filtering.

Each kernel is one left-to-right pass over bars, so its output at row ``i`` depends on rows
``<= i`` only; each has a slow reference in ``tests/framework/regime``.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def hold_min_duration_nb(raw: np.ndarray, min_duration: int) -> np.ndarray:
    """Debounce raw labels ``(bars, columns)``: switch only after ``min_duration`` equal bars.

    A raw label < 0 (warm-up / no data) gives -1 and resets the column, so the first valid raw
    label after it is adopted at once. Otherwise the held label changes to a new label ``k`` at
    the bar where ``k`` has been the raw label for ``min_duration`` consecutive bars.
    """
    n, m = raw.shape
    out = np.empty((n, m), dtype=np.int64)
    current = np.full(m, -1, dtype=np.int64)
    candidate = np.full(m, -1, dtype=np.int64)
    count = np.zeros(m, dtype=np.int64)
    # Bars outer, columns inner: row-major access and the same order a live stepper would use.
    for i in range(n):
        for j in range(m):
            r = raw[i, j]
            if r < 0:
                current[j] = -1
                candidate[j] = -1
                count[j] = 0
            elif current[j] < 0:
                current[j] = r
            elif r == current[j]:
                candidate[j] = -1
                count[j] = 0
            else:
                if r == candidate[j]:
                    count[j] += 1
                else:
                    candidate[j] = r
                    count[j] = 1
                if count[j] >= min_duration:
                    current[j] = r
                    candidate[j] = -1
                    count[j] = 0
            out[i, j] = current[j]
    return out


@njit(cache=True)
def forward_filter_nb(
    log_emission: np.ndarray, start: np.ndarray, transition: np.ndarray
) -> np.ndarray:
    """Filtered HMM state probabilities ``P(state_i | obs_0..i)`` for ``(bars, states)``.

    A row with a NaN log-emission (no observation) propagates the prediction step only, and
    rows before the first observation are NaN. Scaling by the row maximum keeps it stable.
    """
    n, k = log_emission.shape
    out = np.full((n, k), np.nan)
    belief = np.empty(k)
    started = False
    for i in range(n):
        missing = False
        for s in range(k):
            if np.isnan(log_emission[i, s]):
                missing = True
        if not started and missing:
            continue
        prior = np.empty(k)
        if not started:
            for s in range(k):
                prior[s] = start[s]
        else:
            for s in range(k):
                acc = 0.0
                for r in range(k):
                    acc += belief[r] * transition[r, s]
                prior[s] = acc
        if missing:
            for s in range(k):
                belief[s] = prior[s]
        else:
            top = log_emission[i, 0]
            for s in range(1, k):
                if log_emission[i, s] > top:
                    top = log_emission[i, s]
            total = 0.0
            for s in range(k):
                belief[s] = prior[s] * np.exp(log_emission[i, s] - top)
                total += belief[s]
            if total <= 0.0:
                # Every state has ~zero likelihood: fall back to the prior rather than divide by 0.
                for s in range(k):
                    belief[s] = prior[s]
            else:
                for s in range(k):
                    belief[s] /= total
        started = True
        for s in range(k):
            out[i, s] = belief[s]
    return out
