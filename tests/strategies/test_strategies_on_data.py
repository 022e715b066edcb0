"""Every new strategy: look-ahead checks on generated and real bars, and a real backtest."""

from __future__ import annotations

import pytest

from framework.backtest import run_backtest
from framework.data.loading import load_bars
from framework.lookahead import check_strategy
from framework.strategy import param_grid
from strategies import REGISTRY
from strategies.dual_momentum import SECTOR_ETFS
from strategies.regime_switch import INTENDED_SYMBOLS
from tests.barsgen import make_bars

NEW = ("ema_cross", "rsi_reversion", "bollinger_reversion", "donchian_breakout", "macd_trend",
       "vol_target_trend", "dual_momentum", "regime_switch")
UNIVERSE_SYMBOLS = {"dual_momentum": SECTOR_ETFS, "regime_switch": INTENDED_SYMBOLS}


def test_all_new_strategies_are_registered():
    for name in NEW:
        assert REGISTRY[name].name == name
        assert REGISTRY[name]().describe() != name  # has a docstring
    for name in NEW:
        # walk-forward grids stay in the hundreds of combinations
        assert 1 <= len(param_grid(REGISTRY[name].params_type)) <= 500


@pytest.fixture(scope="module")
def real_bars(shared_data):
    folder = shared_data / "daily"
    out = {"single": load_bars(["SPY"], data_dir=folder)}
    for name, symbols in UNIVERSE_SYMBOLS.items():
        out[name] = load_bars(list(symbols), data_dir=folder)
    return out


def _longest_warmup(name):
    strategy = REGISTRY[name]()
    return max(param_grid(strategy.params_type), key=strategy.warmup)


@pytest.mark.parametrize("name", NEW)
def test_check_passes_on_generated_bars(name):
    strategy = REGISTRY[name]()
    width = 4 if strategy.universe else 2
    for params in (strategy.default_params(), _longest_warmup(name)):
        bars = make_bars(n=strategy.warmup(params) + 260, m=width, seed=len(name))
        report = check_strategy(strategy, bars, params)
        assert report.ok, report.format()


@pytest.mark.parametrize("name", NEW)
def test_real_data_backtest_trades_and_check_passes(name, real_bars):
    strategy = REGISTRY[name]()
    bars = real_bars.get(name, real_bars["single"])
    result = run_backtest(strategy, bars)
    assert result.summary["n_trades"] >= 1
    report = check_strategy(strategy, bars)
    assert report.ok, report.format()
