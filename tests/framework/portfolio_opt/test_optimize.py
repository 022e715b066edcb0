"""Optimizers against skfolio / sklearn, closed forms, and their robustness rules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.errors import ParameterError
from framework.portfolio_opt import METHODS, OptimizerSpec, ledoit_wolf, optimize
from framework.portfolio_opt.covariance import estimate_covariance, sample_covariance
from framework.portfolio_opt.methods import bound_proportional


def _returns(t: int = 252, m: int = 8, seed: int = 0, drift: float = 0.0005) -> np.ndarray:
    """Factor-model returns: a common market move plus asset-specific noise of mixed size."""
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.5, 2.0, m)
    return rng.normal(drift, 0.01, (t, m)) * scale + rng.normal(0.0, 0.008, (t, 1))


# -- against the library ------------------------------------------------------------------------


def test_ledoit_wolf_matches_sklearn():
    sk_lw = pytest.importorskip("sklearn.covariance").ledoit_wolf
    for seed, (t, m) in enumerate([(252, 8), (40, 30), (10, 3), (500, 2)]):
        x = _returns(t, m, seed)
        np.testing.assert_allclose(ledoit_wolf(x), sk_lw(x)[0], rtol=1e-10, atol=1e-16)


def _skfolio_prior():
    from skfolio.moments import LedoitWolf
    from skfolio.prior import EmpiricalPrior

    return EmpiricalPrior(covariance_estimator=LedoitWolf())


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("cap", [1.0, 0.3])
def test_min_variance_matches_skfolio(seed, cap):
    from skfolio.optimization import MeanRisk

    x = _returns(seed=seed)
    ref = MeanRisk(prior_estimator=_skfolio_prior(), max_weights=cap).fit(x).weights_
    w = optimize(x, "min_variance", OptimizerSpec(max_weight=cap))
    cov = ledoit_wolf(x)
    # ours is at least as good (solver tolerance of the library) and lands on the same weights
    assert w @ cov @ w <= ref @ cov @ ref * (1 + 1e-7)
    np.testing.assert_allclose(w, ref, atol=2e-3)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("cap", [1.0, 0.3])
def test_max_sharpe_matches_skfolio(seed, cap):
    from skfolio.optimization import MeanRisk, ObjectiveFunction

    x = _returns(seed=seed, drift=0.001)
    ref = MeanRisk(objective_function=ObjectiveFunction.MAXIMIZE_RATIO,
                   prior_estimator=_skfolio_prior(), max_weights=cap).fit(x).weights_
    w = optimize(x, "max_sharpe", OptimizerSpec(max_weight=cap))
    mean, cov = x.mean(axis=0), ledoit_wolf(x)

    def sharpe(v):
        return (mean @ v) / np.sqrt(v @ cov @ v)

    assert sharpe(w) >= sharpe(ref) * (1 - 1e-7)
    np.testing.assert_allclose(w, ref, atol=5e-3)


@pytest.mark.parametrize("seed", [0, 3])
def test_risk_parity_matches_skfolio_risk_budgeting(seed):
    from skfolio.optimization import RiskBudgeting

    x = _returns(seed=seed, m=10)
    ref = RiskBudgeting(prior_estimator=_skfolio_prior()).fit(x).weights_
    np.testing.assert_allclose(optimize(x, "risk_parity"), ref, atol=1e-4)


@pytest.mark.parametrize("seed", [0, 5])
def test_hrp_matches_skfolio_single_linkage(seed):
    from skfolio.cluster import HierarchicalClustering, LinkageMethod
    from skfolio.optimization import HierarchicalRiskParity
    from skfolio.seriation import HierarchicalSeriation

    x = _returns(seed=seed, m=9)
    seriation = HierarchicalSeriation(
        hierarchical_clustering_estimator=HierarchicalClustering(linkage_method=LinkageMethod.SINGLE),
        optimal_ordering=False,
    )
    ref = HierarchicalRiskParity(prior_estimator=_skfolio_prior(),
                                 seriation_estimator=seriation).fit(x).weights_
    np.testing.assert_allclose(optimize(x, "hrp"), ref, atol=1e-9)


# -- closed forms -------------------------------------------------------------------------------


def test_min_variance_two_assets_closed_form():
    spec = OptimizerSpec(shrinkage="none")
    for seed in range(5):
        x = _returns(120, 2, seed)
        c = np.cov(x, rowvar=False)
        expected = (c[1, 1] - c[0, 1]) / (c[0, 0] + c[1, 1] - 2 * c[0, 1])
        w = optimize(x, "min_variance", spec)
        assert w[0] == pytest.approx(np.clip(expected, 0, 1), abs=1e-6)


def test_max_sharpe_unconstrained_closed_form():
    rng = np.random.default_rng(4)
    x = rng.normal([0.002, 0.0015, 0.001], [0.01, 0.012, 0.008], size=(500, 3))
    mean, cov = x.mean(axis=0), np.cov(x, rowvar=False)
    expected = np.linalg.solve(cov, mean)
    assert (expected > 0).all()  # interior tangency portfolio: the closed form applies
    w = optimize(x, "max_sharpe", OptimizerSpec(shrinkage="none"))
    np.testing.assert_allclose(w, expected / expected.sum(), atol=1e-5)


def test_risk_parity_contributions_are_equal():
    x = _returns(252, 12, 7)
    w = optimize(x, "risk_parity", OptimizerSpec(shrinkage="none"))
    contributions = w * (sample_covariance(x) @ w)
    np.testing.assert_allclose(contributions, contributions.mean(), rtol=1e-7)


def test_inverse_volatility_weights():
    x = _returns(200, 6, 8)
    inv = 1.0 / x.std(axis=0, ddof=1)
    np.testing.assert_allclose(optimize(x, "inverse_volatility", OptimizerSpec(shrinkage="none")),
                               inv / inv.sum(), rtol=1e-12)


def test_equal_weight():
    np.testing.assert_allclose(optimize(_returns(50, 4), "equal_weight"), np.full(4, 0.25))


# -- invariants ---------------------------------------------------------------------------------


@st.composite
def _cases(draw):
    m = draw(st.integers(2, 8))
    t = draw(st.integers(3, 80))
    seed = draw(st.integers(0, 2**31 - 1))
    high = draw(st.floats(1.0 / m, 1.0))
    low = draw(st.floats(0.0, 1.0 / m)) if draw(st.booleans()) else 0.0
    return _returns(t, m, seed, drift=draw(st.sampled_from([-0.002, 0.0, 0.001]))), low, high


@settings(max_examples=40, deadline=None)
@given(case=_cases(), method=st.sampled_from(METHODS), shrink=st.sampled_from(["ledoit_wolf", "none"]))
def test_weights_respect_budget_and_bounds(case, method, shrink):
    x, low, high = case
    w = optimize(x, method, OptimizerSpec(min_weight=low, max_weight=high, shrinkage=shrink))
    assert np.isfinite(w).all()
    assert w.sum() == pytest.approx(1.0, abs=1e-9)
    assert w.min() >= low - 1e-9 and w.min() >= 0.0
    assert w.max() <= high + 1e-9


@settings(max_examples=30, deadline=None)
@given(raw=st.lists(st.floats(0.0, 10.0), min_size=2, max_size=10), cap=st.floats(0.0, 1.0))
def test_bound_proportional_keeps_order_and_bounds(raw, cap):
    raw = np.array(raw)
    high = 1.0 / len(raw) + cap * (1.0 - 1.0 / len(raw))
    w = bound_proportional(raw, 0.0, high)
    assert w.sum() == pytest.approx(1.0, abs=1e-9)
    assert w.max() <= high + 1e-12 and w.min() >= 0.0
    order = np.argsort(raw, kind="stable")
    assert (np.diff(w[order]) >= -1e-12).all()  # a bigger raw weight never gets less


# -- robustness ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_missing_history_gets_zero(method):
    x = _returns(120, 5, 9, drift=0.001)
    holed = x.copy()
    holed[:30, 1] = np.nan  # listed mid-window
    holed[60, 3] = np.nan  # one missing bar
    w = optimize(holed, method)
    assert w[1] == 0.0 and w[3] == 0.0
    np.testing.assert_allclose(w[[0, 2, 4]], optimize(x[:, [0, 2, 4]], method), atol=1e-9)
    assert (optimize(np.full((10, 3), np.nan), method) == 0.0).all()


@pytest.mark.parametrize("method", METHODS)
def test_singular_covariance_falls_back_to_ridge(method):
    x = _returns(6, 10, 10)  # fewer bars than assets: the sample covariance is singular
    x[:, 9] = x[:, 8]  # and a duplicated asset
    cov = estimate_covariance(x, "none")
    assert np.linalg.eigvalsh(cov)[0] > 0
    w = optimize(x, method, OptimizerSpec(shrinkage="none", max_weight=0.5))
    assert np.isfinite(w).all() and w.sum() == pytest.approx(1.0) and w.max() <= 0.5 + 1e-9


def test_max_sharpe_without_positive_mean_is_min_variance():
    x = _returns(252, 6, 11, drift=-0.003)
    spec = OptimizerSpec(max_weight=0.4)
    assert (x.mean(axis=0) < 0).all()
    np.testing.assert_allclose(optimize(x, "max_sharpe", spec), optimize(x, "min_variance", spec))


def test_infeasible_bounds_raise_with_fix():
    x = _returns(60, 3)
    with pytest.raises(ParameterError, match=r"infeasible for 3 asset.*max_weight to at least 0.3333"):
        optimize(x, "min_variance", OptimizerSpec(max_weight=0.2))
    x[:, 0] = np.nan  # only two assets with history left: a 40% cap cannot hold 100%
    with pytest.raises(ParameterError, match="infeasible for 2"):
        optimize(x, "risk_parity", OptimizerSpec(max_weight=0.4))
    with pytest.raises(ParameterError, match="min_weight"):
        optimize(_returns(60, 3), "hrp", OptimizerSpec(min_weight=0.4))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_weight": 1.5}, "max_weight=1.5"),
        ({"min_weight": -0.1}, "long-only"),
        ({"min_weight": 0.5, "max_weight": 0.2}, "min_weight <= max_weight"),
        ({"lookback": 1}, "lookback"),
        ({"shrinkage": "ledoitwolf"}, "ledoit_wolf"),
    ],
)
def test_bad_spec_is_caught(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        OptimizerSpec(**kwargs)


def test_bad_method_and_window_are_caught():
    with pytest.raises(ParameterError, match="min_variance"):
        optimize(_returns(50, 3), "min_varaince")
    with pytest.raises(ParameterError, match="2-D"):
        optimize(np.ones(10), "equal_weight")


def test_solver_failure_warns_and_uses_feasible_start(monkeypatch):
    from types import SimpleNamespace

    from framework.portfolio_opt import methods

    def failing(fun, x0, **kwargs):
        return SimpleNamespace(x=np.full_like(x0, np.nan), success=False, status=9,
                               message="Iteration limit reached")

    monkeypatch.setattr(methods, "minimize", failing)
    x = _returns(100, 4, 12)
    with pytest.warns(RuntimeWarning, match="min_variance optimizer did not converge"):
        w = optimize(x, "min_variance")
    inv_var = 1.0 / np.diag(ledoit_wolf(x))
    np.testing.assert_allclose(w, inv_var / inv_var.sum())
