"""The jitted driver that runs a strategy's ``step_nb`` state machine over all bars.

``step_nb(state, raw_row, out_row)`` is the strategy's own ``@njit`` function: it reads the raw
target row of one bar, updates ``state`` in place and writes the final row into ``out_row``. Live
trading calls the very same function once per bar, so both paths share one implementation.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit
def run_steps_nb(step, raw: np.ndarray, state: np.ndarray) -> np.ndarray:
    """Apply ``step`` to each row of ``raw`` in order, threading ``state`` through."""
    out = np.empty_like(raw)
    for i in range(raw.shape[0]):
        step(state, raw[i], out[i])
    return out
