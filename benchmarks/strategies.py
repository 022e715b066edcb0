"""A benchmark-only variant of ``sma_cross`` whose search space is the W2/W4 grid.

fw's walk-forward searches the spaces a strategy's ``Params`` declare; the registered
``sma_cross`` declares a coarser grid, so W4 subclasses it with the benchmark's windows. Defined
at module level so worker processes can unpickle it.
"""

from __future__ import annotations

from dataclasses import dataclass

from framework.strategy import param
from strategies.sma_cross import SmaCross, SmaCrossParams

GRID_FAST: tuple[int, ...] = tuple(range(2, 52))
GRID_SLOW: tuple[int, ...] = tuple(range(20, 330, 10))
QUICK_FAST: tuple[int, ...] = tuple(range(2, 12))
QUICK_SLOW: tuple[int, ...] = (20, 30, 40, 50)


def _windows(fast_space: tuple[int, ...], slow_space: tuple[int, ...]) -> tuple[int, int]:
    """``fast`` and ``slow`` declared like ``SmaCrossParams``' but with other search spaces."""
    fast = param(10, space=fast_space, stage="features", low=1, high=1000,
                 doc="fast moving-average window, bars")
    slow = param(50, space=slow_space, stage="features", low=2, high=2000,
                 doc="slow moving-average window, bars")
    return fast, slow


@dataclass(frozen=True)
class GridSmaParams(SmaCrossParams):
    """``sma_cross`` parameters searched over the full benchmark grid (1,482 valid pairs)."""

    fast: int
    slow: int
    fast, slow = _windows(GRID_FAST, GRID_SLOW)


@dataclass(frozen=True)
class QuickSmaParams(SmaCrossParams):
    """``sma_cross`` parameters searched over the quick benchmark grid (40 pairs)."""

    fast: int
    slow: int
    fast, slow = _windows(QUICK_FAST, QUICK_SLOW)


class GridSmaCross(SmaCross):
    """``sma_cross`` with the benchmark grid as its search space."""

    name = "sma_cross_benchmark_grid"
    params_type = GridSmaParams


class QuickSmaCross(SmaCross):
    """``sma_cross`` with the quick benchmark grid as its search space."""

    name = "sma_cross_benchmark_quick"
    params_type = QuickSmaParams
