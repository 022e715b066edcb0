"""Configuration of the portfolio optimizers: :class:`OptimizerSpec` and :class:`RegimeSpec`."""

from __future__ import annotations

from dataclasses import dataclass

from framework.errors import ParameterError, unknown_name_message

METHODS: tuple[str, ...] = (
    "max_sharpe",
    "min_variance",
    "risk_parity",
    "hrp",
    "inverse_volatility",
    "equal_weight",
)
SHRINKAGE: tuple[str, ...] = ("ledoit_wolf", "none")
# Regime labels written by framework.regime (not imported here: any int label array is accepted).
REGIME_NAMES: tuple[str, ...] = ("BULL", "BEAR", "CHOPPY", "VOLATILE")


def check_method(method: str) -> str:
    """Return ``method`` if it is a known optimizer name, else raise ``ParameterError``."""
    if method not in METHODS:
        raise ParameterError(unknown_name_message("optimizer method", str(method), METHODS))
    return method


@dataclass(frozen=True)
class OptimizerSpec:
    """How weights are estimated from a window of returns (long-only).

    Attributes
    ----------
    lookback : int
        Bars of returns in the estimation window used by the rebalancing helpers (default 252).
    shrinkage : {"ledoit_wolf", "none"}
        Covariance estimator: Ledoit-Wolf shrinkage towards a scaled identity, or the sample one.
    min_weight, max_weight : float
        Bounds per asset with usable history, ``0 <= min_weight <= max_weight <= 1``.
    risk_free_rate : float
        Per-bar risk-free return subtracted from mean returns by ``max_sharpe``.
    """

    lookback: int = 252
    shrinkage: str = "ledoit_wolf"
    min_weight: float = 0.0
    max_weight: float = 1.0
    risk_free_rate: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.lookback, bool) or not isinstance(self.lookback, int) or self.lookback < 2:
            raise ParameterError(
                f"OptimizerSpec.lookback must be an integer >= 2 bars; got {self.lookback!r}."
            )
        if self.shrinkage not in SHRINKAGE:
            raise ParameterError(unknown_name_message("shrinkage", str(self.shrinkage), SHRINKAGE))
        if not 0.0 <= self.min_weight <= self.max_weight <= 1.0:
            raise ParameterError(
                f"OptimizerSpec needs 0 <= min_weight <= max_weight <= 1 (long-only); got "
                f"min_weight={self.min_weight!r}, max_weight={self.max_weight!r}."
            )


@dataclass(frozen=True)
class RegimeSpec:
    """Which optimizer (and how much cash) to use in each regime.

    Labels are ints ``0..3`` = BULL, BEAR, CHOPPY, VOLATILE (``framework.regime`` convention).

    Attributes
    ----------
    methods : tuple of 4 str
        Method per label; default BULL -> max Sharpe, BEAR -> min variance, CHOPPY -> risk
        parity, VOLATILE -> min variance.
    cash : tuple of 4 float
        Fraction kept in cash per label (weights are scaled by ``1 - cash``); default 15% in
        VOLATILE.
    unknown_method : str
        Method used where the label is NaN (regime not yet known, e.g. during its warm-up).
    """

    methods: tuple[str, str, str, str] = ("max_sharpe", "min_variance", "risk_parity", "min_variance")
    cash: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.15)
    unknown_method: str = "min_variance"

    def __post_init__(self) -> None:
        n = len(REGIME_NAMES)
        if len(self.methods) != n or len(self.cash) != n:
            raise ParameterError(
                f"RegimeSpec needs {n} methods and {n} cash fractions (one per {REGIME_NAMES}); "
                f"got {len(self.methods)} and {len(self.cash)}."
            )
        for method in (*self.methods, self.unknown_method):
            check_method(method)
        for name, value in zip(REGIME_NAMES, self.cash, strict=True):
            if not 0.0 <= value < 1.0:
                raise ParameterError(
                    f"RegimeSpec.cash for {name} must be in [0, 1); got {value!r}."
                )

    def select(self, label: float) -> tuple[str, float]:
        """Method and cash fraction for one regime label (NaN means unknown).

        Raises
        ------
        ParameterError
            When ``label`` is not NaN and not one of ``0..3``.
        """
        if label != label:  # NaN: the regime is not known yet
            return self.unknown_method, 0.0
        if float(label) not in (0.0, 1.0, 2.0, 3.0):
            raise ParameterError(
                f"regime label {label!r} is not one of 0..3 ({', '.join(REGIME_NAMES)}); "
                "fix the regime series or map its labels to these ints."
            )
        k = int(label)
        return self.methods[k], float(self.cash[k])
