"""What a walk-forward search maximizes: a named metric or the user's own function of returns.

Named objectives come from :mod:`framework.metrics` (the one source of numbers) and are
annualized with the bars' periods per year. A user objective is any callable
``f(returns: ndarray) -> float`` of the per-bar simple returns of the in-sample window. Higher is
better; a ``nan`` score makes a combination ineligible (e.g. Sharpe of a strategy that never
traded).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from framework import metrics
from framework.errors import ParameterError, unknown_name_message
from framework.walkforward.stats import per_period_sharpe_columns

ObjectiveFunction = Callable[[np.ndarray], float]

_NAMED: dict[str, Callable[[np.ndarray, float], float]] = {
    "sharpe": metrics.sharpe,
    "sortino": metrics.sortino,
    "calmar": metrics.calmar,
    "total_return": lambda returns, _ppy: metrics.total_return(returns),
}
OBJECTIVES: tuple[str, ...] = tuple(_NAMED)


@dataclass(frozen=True)
class Objective:
    """A resolved objective: its name and how to score one return series.

    Attributes
    ----------
    name : str
        ``"sharpe"``, ``"sortino"``, ``"calmar"``, ``"total_return"`` or the callable's name.
    function : callable or None
        The user's ``f(returns) -> float``; ``None`` for named objectives.
    """

    name: str
    function: ObjectiveFunction | None = None

    def score(self, returns: np.ndarray, periods_per_year: float) -> float:
        """The objective of one return series as a float (``nan`` = ineligible)."""
        if self.function is None:
            value = _NAMED[self.name](returns, periods_per_year)
        else:
            value = self.function(np.asarray(returns, dtype=np.float64))
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise ParameterError(
                f"objective {self.name!r} returned {value!r}; it must return a number."
            ) from None
        # +inf (e.g. Sortino with no losing bar) still ranks first; -inf can never be chosen.
        return out if out != -math.inf else math.nan

    def score_columns(
        self, returns: np.ndarray, periods_per_year: float, sharpes: np.ndarray | None = None
    ) -> np.ndarray:
        """Score every column of an ``(n, k)`` return matrix; returns ``(k,)`` floats.

        ``sharpes``, when given, must be ``per_period_sharpe_columns(returns)`` (the caller's
        copy, so a grid's Sharpe ratios are computed once).
        """
        if self.function is None and self.name == "sharpe" and np.isfinite(returns).all():
            # Vectorized (grids score thousands of columns); same formula as metrics.sharpe.
            per_period = per_period_sharpe_columns(returns) if sharpes is None else sharpes
            return per_period * math.sqrt(periods_per_year)
        return np.array(
            [self.score(returns[:, c], periods_per_year) for c in range(returns.shape[1])],
            dtype=np.float64,
        )


def resolve_objective(objective: str | ObjectiveFunction | Objective) -> Objective:
    """Turn ``"sharpe"`` (etc.) or a callable into an :class:`Objective`.

    Raises
    ------
    ParameterError
        For an unknown name (with a did-you-mean suggestion and the valid names).
    """
    if isinstance(objective, Objective):
        return objective
    if isinstance(objective, str):
        name = objective.strip().lower()
        if name not in _NAMED:
            raise ParameterError(
                unknown_name_message("objective", objective, OBJECTIVES)
                + " Or pass a callable f(returns) -> float from Python."
            )
        return Objective(name)
    if callable(objective):
        return Objective(getattr(objective, "__name__", "custom"), objective)
    raise ParameterError(
        f"objective must be one of {', '.join(OBJECTIVES)} or a callable f(returns) -> float; "
        f"got {objective!r}."
    )
