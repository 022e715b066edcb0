"""framework.metrics: cross-checked against empyrical, hand-computed trade metrics, edge cases."""

from __future__ import annotations

import json
import math

import empyrical
import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from framework import metrics
from framework.errors import DataError

RTOL, ATOL = 1e-10, 1e-10
# empyrical warns when tiny samples annualize to inf; fw returns the same inf silently.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
PERIODS = st.sampled_from([12, 52, 252, 252 * 78])


def _returns(min_size: int = 2, max_size: int = 120) -> st.SearchStrategy[np.ndarray]:
    # Bounded floats snapped to a 1e-4 grid (basis points, like real returns). Without the grid,
    # hypothesis finds series like [0.1, 0.1 + 1e-17] whose standard deviation is pure rounding
    # noise, and two correct implementations then disagree in every digit.
    elements = st.floats(-0.5, 0.5, allow_nan=False, allow_infinity=False)
    return hnp.arrays(np.float64, st.integers(min_size, max_size), elements=elements).map(
        lambda a: np.round(a, 4)
    )


@st.composite
def _paired_returns(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    returns = draw(_returns())
    elements = st.floats(-0.5, 0.5, allow_nan=False, allow_infinity=False)
    bench = draw(hnp.arrays(np.float64, returns.size, elements=elements))
    return returns, np.round(bench, 4)


def _close(ours: float, theirs: object) -> None:
    np.testing.assert_allclose(ours, np.asarray(theirs, dtype=float), rtol=RTOL, atol=ATOL)


def _check_against_empyrical(r: np.ndarray, ppy: float) -> None:
    _close(metrics.total_return(r), empyrical.cum_returns_final(r))
    _close(metrics.cagr(r, ppy), empyrical.cagr(r, annualization=ppy))
    _close(metrics.annual_volatility(r, ppy), empyrical.annual_volatility(r, annualization=ppy))
    _close(metrics.sortino(r, ppy), empyrical.sortino_ratio(r, annualization=ppy))
    _close(metrics.max_drawdown(r), empyrical.max_drawdown(r))
    _close(metrics.calmar(r, ppy), empyrical.calmar_ratio(r, annualization=ppy))
    _close(metrics.drawdown_series(r), empyrical.stats.drawdown_series(r))
    _close(metrics.downside_deviation(r, ppy), empyrical.downside_risk(r, annualization=ppy))
    if np.ptp(r) > 0:
        _close(metrics.sharpe(r, ppy), empyrical.sharpe_ratio(r, annualization=ppy))
    else:
        # Deliberate difference: empyrical gives inf for constant non-zero returns.
        assert math.isnan(metrics.sharpe(r, ppy))


# -- empyrical cross-checks ---------------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(r=_returns(), ppy=PERIODS)
def test_return_metrics_match_empyrical(r: np.ndarray, ppy: int) -> None:
    _check_against_empyrical(r, ppy)


@settings(max_examples=150, deadline=None)
@given(pair=_paired_returns(), ppy=PERIODS)
def test_alpha_beta_match_empyrical(pair: tuple[np.ndarray, np.ndarray], ppy: int) -> None:
    r, b = pair
    alpha, beta = metrics.alpha_beta(r, b, ppy)
    if np.ptp(b) == 0:
        # Deliberate difference: for a constant benchmark empyrical divides by the rounding
        # residue of its mean (a number or nan depending on summation order); fw says nan.
        assert math.isnan(alpha) and math.isnan(beta)
        return
    # Beta's rounding noise is about 1e-17 / var(b); keep benchmarks at least as volatile as a
    # quiet market (0.5 % per period) so the 1e-10 comparison measures formulas, not noise.
    assume(np.std(b) >= 0.005)
    _close(beta, empyrical.beta(r, b))
    # alpha = (1 + mean(r - beta * b)) ** ppy - 1 magnifies beta's last-bit differences on the
    # ill-conditioned series hypothesis finds, so the alpha formula is checked given the same
    # beta (empyrical's own _beta argument); the realistic tests compare alpha_beta end to end.
    expected_alpha = empyrical.alpha(r, b, annualization=ppy, _beta=beta)
    np.testing.assert_allclose(1 + alpha, 1 + expected_alpha, rtol=RTOL * max(1.0, ppy / 252))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_realistic_daily_returns_match_empyrical(seed: int) -> None:
    rng = np.random.default_rng(seed)
    market = 0.0003 + 0.011 * rng.standard_t(4, 2520) / np.sqrt(2)
    strategy = 0.7 * market + 0.006 * rng.standard_normal(2520)
    _check_against_empyrical(strategy, 252)
    _close(metrics.alpha_beta(strategy, market, 252), empyrical.alpha_beta(strategy, market))


@pytest.mark.realdata
def test_real_spy_returns_match_empyrical(shared_data) -> None:
    def daily_returns(symbol: str) -> pd.Series:
        frame = pd.read_csv(shared_data / "daily" / f"{symbol}.csv.gz", index_col="date")
        return frame["close"].pct_change().dropna()

    spy, qqq = daily_returns("SPY"), daily_returns("QQQ")
    spy, qqq = spy.align(qqq, join="inner")
    _check_against_empyrical(spy.to_numpy(), 252)
    _close(metrics.alpha_beta(spy, qqq, 252), empyrical.alpha_beta(spy, qqq))
    assert -0.60 < metrics.max_drawdown(spy) < -0.45  # SPY's 2007-09 crash: about -55 %


def test_series_input_keeps_index_for_drawdown_series() -> None:
    index = pd.date_range("2024-01-01", periods=4, tz="UTC")
    returns = pd.Series([0.1, -0.5, 0.2, 1.0], index=index)
    drawdown = metrics.drawdown_series(returns)
    assert isinstance(drawdown, pd.Series) and drawdown.index.equals(index)
    # peak 1.1, then 0.55 (-50 %), 0.66 (-40 %), 1.32 (new high)
    np.testing.assert_allclose(drawdown.to_numpy(), [0.0, -0.5, -0.4, 0.0], atol=1e-15)


# -- hand-computed examples -------------------------------------------------------------------
def test_return_metrics_by_hand() -> None:
    r = np.array([0.10, -0.20, 0.05])
    # equity 1.1, 0.88, 0.924
    assert metrics.total_return(r) == pytest.approx(-0.076, abs=1e-15)
    assert metrics.cagr(r, 3) == pytest.approx(-0.076, abs=1e-15)  # n == ppy: one year
    assert metrics.max_drawdown(r) == pytest.approx(0.88 / 1.1 - 1, abs=1e-15)
    assert metrics.max_drawdown([-0.1, 0.05]) == pytest.approx(-0.1, abs=1e-15)  # first bar counts
    assert metrics.calmar(r, 3) == pytest.approx(-0.076 / 0.2, abs=1e-14)


@pytest.mark.parametrize(
    ("pnls", "win_rate", "profit_factor", "expectancy"),
    [
        ([100.0, -50.0, 25.0, -25.0], 0.5, 125.0 / 75.0, 12.5),
        ([10.0, 20.0], 1.0, math.inf, 15.0),
        ([-10.0, -30.0], 0.0, 0.0, -20.0),
        ([0.0, 40.0, -10.0], 1 / 3, 4.0, 10.0),  # break-even is not a win
        ([0.0, 0.0], 0.0, math.nan, 0.0),  # no profits and no losses: 0/0
        ([], math.nan, math.nan, math.nan),
    ],
)
def test_trade_metrics_by_hand(pnls, win_rate, profit_factor, expectancy) -> None:
    np.testing.assert_equal(metrics.win_rate(pnls), win_rate)
    np.testing.assert_allclose(metrics.profit_factor(pnls), profit_factor, rtol=1e-15)
    np.testing.assert_allclose(metrics.expectancy(pnls), expectancy, rtol=1e-15)


def test_holding_exposure_turnover_by_hand() -> None:
    assert metrics.avg_days_held([1.0, 2.0, 6.0]) == 3.0
    assert math.isnan(metrics.avg_days_held([]))
    assert metrics.exposure([0.0, 1.0, 1.0, 0.0]) == 0.5
    assert metrics.exposure([2.0, 2.0]) == 2.0  # gross leverage counts
    # 504 bars = 2 years at 252; 400k traded against 100k mean equity -> 2 per year.
    traded = np.zeros(504)
    traded[[0, 100, 300]] = [100_000.0, -150_000.0, 150_000.0]
    assert metrics.turnover(traded, np.full(504, 100_000.0), 252) == pytest.approx(2.0)
    assert math.isnan(metrics.turnover([1.0], [0.0], 252))


@pytest.mark.parametrize(
    ("spacing", "expected"),
    [
        ("1min", 252 * 390),
        ("5min", 252 * 78),
        ("30min", 252 * 13),
        ("1h", 252 * 7),
        ("1D", 252),
        ("7D", 52),
        ("30D", 12),
        ("91D", 4),
        ("365D", 1),
    ],
)
def test_infer_periods_per_year(spacing: str, expected: float) -> None:
    index = pd.date_range("2024-01-02 14:30", periods=50, freq=spacing, tz="UTC")
    assert metrics.infer_periods_per_year(index) == expected


def test_infer_periods_per_year_daily_bars_with_weekends() -> None:
    index = pd.bdate_range("2024-01-02", periods=300, tz="UTC") + pd.Timedelta(hours=21)
    assert metrics.infer_periods_per_year(index) == 252


# -- edge cases -----------------------------------------------------------------------------
def test_empty_input_gives_nan_not_errors() -> None:
    empty = np.array([])
    for value in (
        metrics.total_return(empty),
        metrics.cagr(empty, 252),
        metrics.annual_volatility(empty, 252),
        metrics.sharpe(empty, 252),
        metrics.sortino(empty, 252),
        metrics.max_drawdown(empty),
        metrics.calmar(empty, 252),
        *metrics.alpha_beta(empty, empty, 252),
    ):
        assert math.isnan(value)
    assert metrics.drawdown_series(empty).size == 0


@pytest.mark.parametrize("value", [0.01, 0.0, -0.01])
def test_constant_returns(value: float) -> None:
    r = np.full(20, value)
    assert metrics.annual_volatility(r, 252) == 0.0
    assert math.isnan(metrics.sharpe(r, 252))  # zero volatility -> nan, never inf
    expected_sortino = {0.01: math.inf, 0.0: math.nan, -0.01: -math.sqrt(252)}[value]
    np.testing.assert_allclose(metrics.sortino(r, 252), expected_sortino, rtol=1e-12)
    alpha, beta = metrics.alpha_beta(np.linspace(0, 0.01, 20), r, 252)  # constant benchmark
    assert math.isnan(alpha) and math.isnan(beta)


def test_no_losses() -> None:
    r = np.array([0.01, 0.0, 0.02])
    assert metrics.sortino(r, 252) == math.inf  # matches empyrical
    assert metrics.max_drawdown(r) == 0.0
    assert math.isnan(metrics.calmar(r, 252))  # no drawdown to divide by


def test_single_return() -> None:
    assert metrics.total_return([0.05]) == pytest.approx(0.05)
    assert math.isnan(metrics.sharpe([0.05], 252))
    assert math.isnan(metrics.annual_volatility([0.05], 252))


def test_negative_final_equity_cagr_is_nan() -> None:
    assert math.isnan(metrics.cagr([-1.5, 0.1], 252))
    assert metrics.cagr([-1.0, 0.1], 252) == -1.0


# -- known-bad input is caught ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: metrics.sharpe([0.01, np.nan, 0.02], 252), "non-finite value nan at position 1"),
        (lambda: metrics.sharpe(np.ones((3, 2)), 252), "must be 1-D"),
        (lambda: metrics.sharpe(pd.DataFrame({"a": [0.1, 0.2]}), 252), "DataFrame"),
        (lambda: metrics.sharpe([0.01, 0.02], 0), "periods_per_year must be a positive"),
        (lambda: metrics.sharpe([0.01, 0.02], "252"), "periods_per_year must be a positive"),
        (lambda: metrics.alpha_beta([0.1, 0.2], [0.1], 252), "same length"),
        (lambda: metrics.exposure([0.5, -1.0]), "negative value -1.0 at position 1"),
        (lambda: metrics.avg_days_held([1.0, -2.0]), "negative duration"),
        (lambda: metrics.turnover([1.0, 2.0], [1.0], 252), "one value of each per bar"),
        (lambda: metrics.infer_periods_per_year(pd.DatetimeIndex(["2024-01-01"])), "at least 2"),
        (lambda: metrics.total_return(["a", "b"]), "must be numeric"),
    ],
)
def test_bad_input_raises_data_error(call, fragment: str) -> None:
    with pytest.raises(DataError, match=fragment):
        call()


def test_misaligned_series_are_rejected() -> None:
    a = pd.Series([0.01, 0.02], index=pd.date_range("2024-01-01", periods=2, tz="UTC"))
    b = pd.Series([0.01, 0.02], index=pd.date_range("2024-02-01", periods=2, tz="UTC"))
    with pytest.raises(DataError, match="different indexes"):
        metrics.alpha_beta(a, b, 252)


# -- summarize ------------------------------------------------------------------------------
def _trades() -> pd.DataFrame:
    entry = pd.to_datetime(["2024-01-02", "2024-01-05", "2024-02-01", "2024-03-01"], utc=True)
    exit_ = pd.to_datetime(
        ["2024-01-04 00:00", "2024-01-05 12:00", "2024-02-11 00:00", None], utc=True
    )
    return pd.DataFrame(
        {"pnl": [50.0, -20.0, 30.0, 999.0], "entry_time": entry, "exit_time": exit_}
    )


def test_summarize_keys_types_and_json() -> None:
    rng = np.random.default_rng(7)
    index = pd.bdate_range("2024-01-02", periods=60, tz="UTC")
    returns = pd.Series(rng.normal(0.001, 0.01, 60), index=index)
    bench = pd.Series(rng.normal(0.0005, 0.01, 60), index=index)
    summary = metrics.summarize(
        returns,
        bench,
        _trades(),
        periods_per_year=252,
        gross_exposure=np.full(60, 0.8),
        traded_value=np.full(60, 0.05),
        costs={"commission": 3.0, "slippage": np.array([1.0, 0.5])},
    )
    assert tuple(summary) == metrics.SUMMARY_KEYS
    assert set(summary) == {
        "total_return", "cagr", "annual_volatility", "sharpe", "sortino", "max_drawdown",
        "calmar", "win_rate", "profit_factor", "n_trades", "avg_days_held", "exposure",
        "turnover", "total_costs", "benchmark_total_return", "benchmark_sharpe", "alpha", "beta",
    }  # fmt: skip
    assert type(summary["n_trades"]) is int
    assert all(type(v) is float for k, v in summary.items() if k != "n_trades")
    assert json.loads(json.dumps(summary, allow_nan=True)).keys() == summary.keys()
    # the open trade (exit NaT, pnl 999) is excluded from trade statistics
    assert summary["n_trades"] == 3
    assert summary["win_rate"] == pytest.approx(2 / 3)
    assert summary["profit_factor"] == pytest.approx(80 / 20)
    assert summary["avg_days_held"] == pytest.approx((2 + 0.5 + 10) / 3)
    assert summary["exposure"] == pytest.approx(0.8)
    assert summary["total_costs"] == pytest.approx(4.5)
    assert summary["sharpe"] == metrics.sharpe(returns, 252)
    assert summary["benchmark_total_return"] == metrics.total_return(bench)
    assert (summary["alpha"], summary["beta"]) == metrics.alpha_beta(returns, bench, 252)
    equity = np.cumprod(1 + returns.to_numpy())  # default: growth of one unit
    assert summary["turnover"] == pytest.approx(0.05 * 60 / equity.mean() / (60 / 252))


def test_summarize_without_optional_inputs() -> None:
    empty = pd.DataFrame({"pnl": [], "entry_time": [], "exit_time": []})
    summary = metrics.summarize([0.01, -0.02, 0.03], None, empty, periods_per_year=252)
    assert summary["n_trades"] == 0
    nan_keys = {k for k, v in summary.items() if isinstance(v, float) and math.isnan(v)}
    assert nan_keys == {
        "win_rate", "profit_factor", "avg_days_held", "exposure", "turnover", "total_costs",
        "benchmark_total_return", "benchmark_sharpe", "alpha", "beta",
    }  # fmt: skip
    json.dumps(summary, allow_nan=True)


def test_summarize_infinite_profit_factor_is_float_inf() -> None:
    trades = _trades().iloc[[0, 2]]
    summary = metrics.summarize([0.01, 0.02], [0.0, 0.01], trades, periods_per_year=252)
    assert summary["profit_factor"] == float("inf")
    assert "Infinity" in json.dumps(summary, allow_nan=True)


@pytest.mark.parametrize(
    ("trades", "fragment"),
    [
        (pd.DataFrame({"pnl": [1.0]}), "lacks columns"),
        ([1.0, 2.0], "must be a DataFrame"),
        (_trades().assign(entry_time=lambda t: t["entry_time"].where(t.index != 1)), "row 1"),
        (_trades().assign(entry_time=pd.Timestamp("2024-01-01")), "all UTC or all naive"),
        (_trades().assign(pnl=[1.0, np.nan, 2.0, 3.0]), "non-finite value nan"),
    ],
)
def test_summarize_rejects_bad_trades(trades, fragment: str) -> None:
    with pytest.raises(DataError, match=fragment):
        metrics.summarize([0.01, 0.02], None, trades, periods_per_year=252)


def test_metrics_are_fast_on_long_series() -> None:
    import time

    r = np.random.default_rng(0).normal(0.0003, 0.01, 1_000_000)
    start = time.perf_counter()
    metrics.summarize(r, r[::-1].copy(), _trades(), periods_per_year=252 * 390)
    # Vectorized numpy handles a million bars in well under a second; a per-element Python
    # loop would take many seconds.
    assert time.perf_counter() - start < 2.0
