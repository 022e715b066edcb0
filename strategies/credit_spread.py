"""Sell 30-45 DTE credit spreads or iron condors when implied volatility is rich.

The premium-selling strategy of issue #10: at a session's close, when the IV rank (VIX for
SPY/QQQ, else the chain model's realised-vol level) is at least ``iv_rank_min``, sell a
``short_delta`` put spread (``bull_put``), call spread (``bear_call``) or both (``iron_condor``)
``width`` points wide in the listed expiry nearest the middle of ``dte_min..dte_max``; take
profit when the spread can be bought back for ``(1 - take_profit)`` of its credit, stop when the
loss reaches ``stop_multiple`` credits, close at ``exit_dte`` days to expiry; at most
``max_open`` positions, each risking ``risk_per_trade`` of equity. Every pricing assumption is in
:data:`framework.options.backtest.ASSUMPTIONS` and in each run's ``run.json``.
"""

from __future__ import annotations

from dataclasses import dataclass

from framework.errors import ConfigError, ParameterError
from framework.options.backtest import CreditSpreadSpec
from framework.options.strategy import OptionsStrategy
from framework.strategy import Params, param


@dataclass(frozen=True)
class CreditSpreadParams(Params):
    kind: str = param("bull_put", space=("bull_put", "iron_condor"),
                      doc="bull_put, bear_call or iron_condor")
    short_delta: float = param(0.20, space=(0.16, 0.20, 0.30), low=0.01, high=0.49,
                               doc="target |delta| of each short strike")
    width: float = param(5.0, low=0.5, doc="wing width in strike points")
    dte_min: int = param(30, low=1, doc="earliest calendar days to expiry at entry")
    dte_max: int = param(45, low=1, doc="latest calendar days to expiry at entry")
    iv_rank_min: float = param(0.5, space=(0.0, 0.5), low=0.0, high=1.0,
                               doc="enter only when the IV rank is at least this (0: always)")
    iv_rank_window: int = param(252, low=2, doc="sessions of the IV rank window")
    take_profit: float = param(0.5, space=(0.5, 0.75), low=0.01, high=1.0,
                               doc="close at this fraction of the credit earned")
    stop_multiple: float = param(2.0, low=0.1, doc="close when the loss reaches this many credits")
    exit_dte: int = param(21, low=0, doc="close at this many calendar days to expiry")
    max_open: int = param(3, low=1, doc="most positions open at once")
    entry_every_days: int = param(5, low=1, doc="at most one entry per this many sessions")
    risk_per_trade: float = param(0.02, low=0.001, high=1.0,
                                  doc="max loss of a new position as a fraction of equity")

    def check(self) -> None:
        try:
            self.to_spec()
        except ConfigError as exc:  # same message; the search skips invalid combinations
            raise ParameterError(str(exc)) from exc

    def to_spec(self) -> CreditSpreadSpec:
        return CreditSpreadSpec(**self.as_dict())


class CreditSpread(OptionsStrategy):
    """Sell 30-45 DTE credit spreads or iron condors when IV rank is high (options backtester).

    Exits at a profit target, a stop or 21 DTE; see the module docstring."""

    name = "credit_spread"
    params_type = CreditSpreadParams

    def spec(self, p: CreditSpreadParams) -> CreditSpreadSpec:
        return p.to_spec()
