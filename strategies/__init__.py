"""The registered strategies. Add a strategy by importing its class and listing it here.

The registry is explicit (no import-time discovery): ``REGISTRY`` maps the name used on the command
line to the class of every strategy the stock engine runs, ``OPTIONS_REGISTRY`` those of option
strategies, and ``ALL_STRATEGIES`` both.
"""

from __future__ import annotations

from strategies.bollinger_reversion import BollingerReversion
from strategies.credit_spread import CreditSpread
from strategies.donchian_breakout import DonchianBreakout
from strategies.dual_momentum import DualMomentum
from strategies.ema_cross import EmaCross
from strategies.macd_trend import MacdTrend
from strategies.ml_classifier import MlClassifier
from strategies.momentum import CrossSectionalMomentum
from strategies.portfolio import MaxSharpePortfolio, MinVariancePortfolio, RiskParityRebalance
from strategies.regime_switch import RegimeSwitch
from strategies.rsi_reversion import RsiReversion
from strategies.sma_cross import SmaCross
from strategies.vol_target_trend import VolTargetTrend

REGISTRY = {
    cls.name: cls
    for cls in (
        SmaCross,
        CrossSectionalMomentum,
        EmaCross,
        RsiReversion,
        BollingerReversion,
        DonchianBreakout,
        MacdTrend,
        VolTargetTrend,
        DualMomentum,
        RegimeSwitch,
        RiskParityRebalance,
        MinVariancePortfolio,
        MaxSharpePortfolio,
        MlClassifier,
    )
}

# strategies that trade option spreads (framework.options.strategy.OptionsStrategy): they run on
# the options backtester, not the stock engine, so suites over REGISTRY do not apply to them
OPTIONS_REGISTRY = {cls.name: cls for cls in (CreditSpread,)}

# every name the command line resolves
ALL_STRATEGIES = {**REGISTRY, **OPTIONS_REGISTRY}

__all__ = [
    "ALL_STRATEGIES",
    "OPTIONS_REGISTRY",
    "REGISTRY",
    "BollingerReversion",
    "CreditSpread",
    "CrossSectionalMomentum",
    "DonchianBreakout",
    "DualMomentum",
    "EmaCross",
    "MacdTrend",
    "MaxSharpePortfolio",
    "MinVariancePortfolio",
    "MlClassifier",
    "RegimeSwitch",
    "RiskParityRebalance",
    "RsiReversion",
    "SmaCross",
    "VolTargetTrend",
]
