"""Small module-level strategies for the walk-forward tests (module level so workers can pickle them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from framework.errors import ParameterError
from framework.indicators import latch, sma
from framework.strategy import Params, Strategy, param
from framework.types import Bars


@dataclass(frozen=True)
class SmallCrossParams(Params):
    fast: int = param(5, space=(3, 5, 8), stage="features", low=1)
    slow: int = param(20, space=(8, 20, 30), stage="features", low=2)
    short: bool = param(False, space=(False, True), stage="target")

    def check(self) -> None:
        if self.fast >= self.slow:
            raise ParameterError(f"fast must be below slow; got {self.fast} >= {self.slow}.")


class SmallCross(Strategy):
    """SMA cross with a small search space (features and target stages)."""

    name = "small_cross"
    params_type = SmallCrossParams

    def warmup(self, p: SmallCrossParams) -> int:
        return p.slow

    def features(self, bars: Bars, p: SmallCrossParams) -> dict[str, np.ndarray]:
        return {"fast": sma(bars.close, p.fast), "slow": sma(bars.close, p.slow)}

    def target(self, features: Mapping[str, np.ndarray], p: SmallCrossParams) -> np.ndarray:
        fast, slow = features["fast"], features["slow"]
        long = latch(fast > slow, fast < slow)
        return long - latch(fast < slow, fast > slow) if p.short else long


@dataclass(frozen=True)
class LevelParams(Params):
    level: float = param(0.0, space=(0.0, 0.5, 1.0, -1.0), stage="target", low=-1.0, high=1.0)
    dummy: int = param(3, space=(3, 1, 2), stage="features")


class Level(Strategy):
    """Holds a constant position ``level`` (``dummy`` changes nothing: a tie maker)."""

    name = "level"
    params_type = LevelParams

    def features(self, bars: Bars, p: LevelParams) -> dict[str, np.ndarray]:
        return {"ones": np.ones_like(bars.close)}

    def target(self, features: Mapping[str, np.ndarray], p: LevelParams) -> np.ndarray:
        return features["ones"] * p.level


@dataclass(frozen=True)
class FittedParams(Params):
    scale: float = param(1.0, space=(0.5, 1.0), stage="target", low=0.0)


class Fitted(Strategy):
    """A learned strategy: ``fit`` remembers the bars it saw; long when close > their mean."""

    name = "fitted"
    params_type = FittedParams

    def fit(self, bars: Bars, p: FittedParams) -> dict:
        return {
            "first": bars.index[0],
            "last": bars.index[-1],
            "n": bars.n_bars,
            "mean": float(np.nanmean(bars.close)),
        }

    def features(self, bars: Bars, p: FittedParams) -> dict[str, np.ndarray]:
        return {"close": bars.close}

    def target(
        self, features: Mapping[str, np.ndarray], p: FittedParams, model: dict
    ) -> np.ndarray:
        return (features["close"] > model["mean"]).astype(float) * p.scale


# Source of a strategy kept in a user's own file (loaded by path, not importable by name): the
# executors must run it in worker processes and on Ray.
USER_FILE_SOURCE = """
from dataclasses import dataclass
import numpy as np
from framework.indicators import sma
from framework.strategy import Params, Strategy, param


@dataclass(frozen=True)
class AboveParams(Params):
    window: int = param(10, space=(5, 10, 20), stage="features", low=1)


class Above(Strategy):
    name = "above"
    params_type = AboveParams

    def warmup(self, p):
        return p.window

    def features(self, bars, p):
        return {"avg": sma(bars.close, p.window), "close": bars.close}

    def target(self, features, p):
        return (features["close"] > features["avg"]).astype(float)
"""
