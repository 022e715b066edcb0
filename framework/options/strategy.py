"""Options strategies: the parameters a user searches, mapped onto the credit-spread rules.

An options strategy does not produce target positions in the underlying (the engine's
contract); it names the rules of :class:`~framework.options.backtest.CreditSpreadSpec` per
parameter set. ``fw backtest`` sees an :class:`OptionsStrategy` and runs it through the options
backtester (:mod:`framework.options.backtest`) and, with ``--walk-forward``, the options
walk-forward (:mod:`framework.walkforward.options`); the paper runner applies the same spec to
live quotes. Parameters are declared with :func:`framework.strategy.param` exactly as for any
strategy, so ``--set``, search spaces and ``fw strategies`` work unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from framework.errors import StrategyError
from framework.options.backtest import CreditSpreadSpec
from framework.strategy import Params, Strategy
from framework.types import Bars


class OptionsStrategy(Strategy):
    """Base class of strategies that trade option spreads on one underlying.

    Subclasses set ``name``, ``params_type`` and override :meth:`spec`.

    Attributes
    ----------
    underlying : str
        Default underlying when the run names none (``SPY`` with ``--data-dir``; the embedded
        data has only index levels, so offline runs use the S&P 500 index as SPX).
    """

    underlying: ClassVar[str] = "SPY"

    def spec(self, p: Params) -> CreditSpreadSpec:
        """The entry, exit and sizing rules of parameter set ``p``."""
        raise NotImplementedError

    def warmup(self, p: Params) -> int:
        return int(self.spec(p).iv_rank_window)

    def features(self, bars: Bars, p: Params) -> dict[str, np.ndarray]:
        raise StrategyError(self._not_targets())

    def target(self, features: Mapping[str, np.ndarray], p: Params) -> np.ndarray:
        raise StrategyError(self._not_targets())

    def _not_targets(self) -> str:
        return (f"{self.name} trades option spreads, not positions in the underlying: run it with "
                f"`fw backtest {self.name}` (single run or --walk-forward) or `fw paper {self.name} "
                "--broker alpaca`; the stock engine, `fw check` and the sim replay do not apply.")
