"""Portfolio strategies: look-ahead checks, parameters, and runs on real data."""

from __future__ import annotations

import numpy as np
import pytest

from framework.backtest import equal_weight_benchmark, run_backtest
from framework.errors import ParameterError
from framework.lookahead import CheckSpec, check_strategy
from framework.strategy import compute_target, param_grid
from strategies.portfolio import (
    MaxSharpeParams,
    MaxSharpePortfolio,
    MinVarianceParams,
    MinVariancePortfolio,
    RiskParityParams,
    RiskParityRebalance,
)
from tests.barsgen import make_bars

LARGE_CAPS = ("AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "TSLA")
SECTORS = ("XLB", "XLE", "XLF", "XLI", "XLK", "XLP", "XLU", "XLV", "XLY")

FAST = [
    (RiskParityRebalance(), RiskParityParams(lookback=63)),
    (RiskParityRebalance(), RiskParityParams(lookback=63, method="hrp", max_weight=0.5)),
    (MinVariancePortfolio(), MinVarianceParams(lookback=63)),
    (MaxSharpePortfolio(), MaxSharpeParams(lookback=63, trend_window=100)),
    (MaxSharpePortfolio(), MaxSharpeParams(lookback=63, use_regime=False)),
]


@pytest.mark.parametrize("strategy, params", FAST, ids=lambda v: getattr(v, "name", ""))
def test_lookahead_checks_pass_on_generated_bars(strategy, params):
    bars = make_bars(n=330, m=4, seed=21)
    report = check_strategy(strategy, bars, params)
    assert report.ok, report.format()
    target = compute_target(strategy, bars, params)
    held = target[strategy.warmup(params):]
    assert (held >= 0).all() and (held.sum(axis=1) <= 1 + 1e-9).all()
    assert (held.sum(axis=1) >= 0.85 - 1e-9).all()  # invested after warm-up (cash only if VOLATILE)


def _trend_regime(bars):
    # causal: BULL when the first symbol is above its close 50 bars ago, else BEAR
    close = bars.close[:, 0]
    labels = np.full(bars.n_bars, np.nan)
    labels[50:] = np.where(close[50:] >= close[:-50], 0.0, 1.0)
    return labels


def _leaky_regime(bars):
    # peeks 5 bars ahead: must be caught
    close = bars.close[:, 0]
    labels = np.zeros(bars.n_bars)
    labels[:-5] = np.where(close[5:] >= close[:-5], 0.0, 1.0)
    return labels


def test_regime_series_drives_the_method_and_leaks_are_caught():
    bars = make_bars(n=330, m=4, seed=22)
    params = MaxSharpeParams(lookback=63)
    good = MaxSharpePortfolio(regime=_trend_regime, regime_warmup=50)
    assert check_strategy(good, bars, params).ok
    labels = good.features(bars, params)["regime"]
    np.testing.assert_array_equal(labels, _trend_regime(bars))
    bad = check_strategy(MaxSharpePortfolio(regime=_leaky_regime), bars, params, CheckSpec(stepper_bars=20))
    assert not bad.ok
    with pytest.raises(ParameterError, match="one label per bar"):
        MaxSharpePortfolio(regime=lambda b: np.zeros(3)).features(bars, params)


def test_parameters_declare_search_spaces_and_reject_bad_values():
    for params_type in (RiskParityParams, MinVarianceParams, MaxSharpeParams):
        meta = params_type.meta()
        assert meta["lookback"].space and meta["max_weight"].space
        assert meta["lookback"].stage == "features"
        assert len(param_grid(params_type)) > 1
    with pytest.raises(ParameterError, match="risk_parity"):
        RiskParityParams(method="risk_party")
    with pytest.raises(ParameterError, match="lookback"):
        MinVarianceParams(lookback=5)


@pytest.fixture(scope="module")
def large_caps(shared_data):
    from framework.data.loading import load_bars

    return load_bars(LARGE_CAPS, data_dir=shared_data / "daily", start="2009-01-01")


@pytest.fixture(scope="module")
def sectors(shared_data):
    from framework.data.loading import load_bars

    return load_bars(SECTORS, data_dir=shared_data / "daily", start="2005-01-01")


@pytest.mark.realdata
@pytest.mark.parametrize("strategy", [RiskParityRebalance(), MinVariancePortfolio(), MaxSharpePortfolio()],
                         ids=lambda s: s.name)
def test_real_data_lookahead_and_backtest(strategy, large_caps):
    recent = large_caps.iloc(slice(large_caps.n_bars - 900, large_caps.n_bars))
    report = check_strategy(strategy, recent, strategy.params_type(lookback=126),
                            CheckSpec(n_cuts=4, stepper_bars=25))
    assert report.ok, report.format()
    result = run_backtest(strategy, large_caps, benchmark=equal_weight_benchmark(large_caps))
    assert np.isfinite(result.sim.equity).all() and result.summary["final_equity"] > 0
    target = result.target
    cap = strategy.default_params().max_weight
    assert (target >= 0).all() and (target <= cap + 1e-9).all()
    assert (target.sum(axis=1) <= 1 + 1e-9).all()
    meta = large_caps.symbols.index("META")
    listed = np.flatnonzero(np.isfinite(large_caps.close[:, meta]))[0]
    assert (target[: listed + 252, meta] == 0).all()  # no weight before a full window of history
    traded = np.isfinite(large_caps.close[-500:]).all(axis=1)
    late = target[-500:][traded].sum(axis=1)
    assert np.isin(np.round(late, 9), [0.85, 1.0]).all()


@pytest.mark.realdata
def test_sector_risk_parity_spreads_risk_and_min_variance_lowers_it(sectors):
    rp = run_backtest(RiskParityRebalance(), sectors)
    traded = np.isfinite(sectors.close[-1000:]).all(axis=1)  # a symbol's missing bar holds 0
    weights = rp.target[-1000:][traded]
    assert (weights > 0.02).all() and np.allclose(weights.sum(axis=1), 1.0)
    # the lowest-volatility sector (by its own trailing history) gets more than the highest
    vol = np.nanstd(np.diff(np.log(sectors.close[-1000:]), axis=0), axis=0)
    assert weights[:, np.argmin(vol)].mean() > weights[:, np.argmax(vol)].mean()
    mv = run_backtest(MinVariancePortfolio(), sectors)
    ew = run_backtest(RiskParityRebalance(), sectors, RiskParityParams(method="inverse_volatility"))
    assert mv.summary["annual_volatility"] < ew.summary["annual_volatility"]
