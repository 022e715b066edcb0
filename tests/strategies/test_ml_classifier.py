"""ml_classifier: the DESIGN.md section 4 guarantees with a fitted model, a fit that never sees
later bars, reproducibility, refusals without a model, parameter validation and a real-data fit.

Learned strategies cannot run in tests/property/test_strategy_guarantees.py (it has no model to
give them); this file is where their guarantees are checked.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.backtest import BacktestSpec
from framework.data.loading import load_bars
from framework.errors import ParameterError, StrategyError
from framework.lookahead import check_strategy, perturb_after
from framework.stepper import ScheduleEntry, Stepper
from framework.strategy import compute_target
from framework.walkforward import SearchSpec, WalkForwardSpec, WindowSpec, walk_forward
from framework.walkforward.search import fit_models
from framework.walkforward.splits import Fold
from strategies import REGISTRY
from strategies.ml_classifier import MlClassifier, MlParams
from tests.barsgen import make_bars

FEW = settings(max_examples=6, deadline=None,
               suppress_health_check=[HealthCheck.too_slow])
STRATEGY = MlClassifier()
BASE = MlParams(search=False)
WARMUP = STRATEGY.warmup(BASE)
BARS = make_bars(n=WARMUP + 400, m=1, seed=21)
VARIANTS = {"default": BASE, "meta_label": BASE.replace(meta_label=True)}
_MODELS: dict[str, object] = {}


def fitted(variant: str):
    """The variant's model, fitted once per module on ``BARS``."""
    if variant not in _MODELS:
        _MODELS[variant] = STRATEGY.fit(BARS, VARIANTS[variant])
    return _MODELS[variant]


def target_params(data, variant: str) -> MlParams:
    """The variant's fit parameters with drawn target-stage values (they share its model)."""
    threshold = data.draw(st.sampled_from([0.5, 0.55, 0.6]), label="threshold")
    return VARIANTS[variant].replace(
        threshold=threshold,
        long_only=data.draw(st.booleans(), label="long_only"),
        kelly=data.draw(st.sampled_from([0.0, 0.5]), label="kelly"),
        scaling=data.draw(st.sampled_from(["fixed", "confidence"]), label="scaling"),
    )


def schedule(p: MlParams, model) -> list[ScheduleEntry]:
    return [ScheduleEntry(BARS.index[0], p, model)]


def test_registered_as_a_learned_strategy():
    assert REGISTRY["ml_classifier"] is MlClassifier
    assert MlClassifier.fit is not None
    assert MlClassifier().describe().startswith("Learned classifier")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_fitted_model_trades_after_the_warmup_only(variant):
    model = fitted(variant)
    target = compute_target(STRATEGY, BARS, VARIANTS[variant], model)
    assert target.shape == (BARS.n_bars, 1) and np.isfinite(target).all()
    np.testing.assert_array_equal(target[:WARMUP], 0.0)
    assert ((target >= 0) & (target <= 1)).all()  # long only by default
    assert model.n_samples > 200 and model.window[1] == BARS.index[-1].isoformat()


# -- DESIGN.md section 4 guarantees, with a model -------------------------------------------------
@pytest.mark.parametrize("variant", sorted(VARIANTS))
@FEW
@given(data=st.data())
def test_prefix_invariance(variant, data):
    p, model = target_params(data, variant), fitted(variant)
    full = compute_target(STRATEGY, BARS, p, model)
    k = data.draw(st.integers(1, BARS.n_bars), label="k")
    np.testing.assert_array_equal(compute_target(STRATEGY, BARS.iloc(slice(0, k)), p, model), full[:k])


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@FEW
@given(data=st.data())
def test_future_blindness(variant, data):
    p, model = target_params(data, variant), fitted(variant)
    k = data.draw(st.integers(0, BARS.n_bars - 1), label="k")
    before = compute_target(STRATEGY, BARS, p, model)[: k + 1]
    after = compute_target(STRATEGY, perturb_after(BARS, k, seed=k), p, model)[: k + 1]
    np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_live_stepper_equals_vectorized(variant, data):
    # each stepped bar recomputes the features on the whole history: keep the stepped span short
    p, model = target_params(data, variant), fitted(variant)
    start = data.draw(st.integers(BARS.n_bars - 40, BARS.n_bars - 1), label="start")
    stepper = Stepper(STRATEGY, schedule(p, model), BARS.symbols, history=BARS.iloc(slice(0, start)))
    live = stepper.update_bars(BARS.iloc(slice(start, BARS.n_bars)))
    np.testing.assert_array_equal(live, compute_target(STRATEGY, BARS, p, model)[start:])


def test_live_stepper_through_the_end_of_the_warmup():
    model = fitted("default")
    bars = BARS.iloc(slice(0, WARMUP + 15))
    stepper = Stepper(STRATEGY, schedule(BASE, model), bars.symbols,
                      history=bars.iloc(slice(0, WARMUP - 10)))
    live = stepper.update_bars(bars.iloc(slice(WARMUP - 10, bars.n_bars)))
    expected = compute_target(STRATEGY, bars, BASE, model)[WARMUP - 10:]
    np.testing.assert_array_equal(live, expected)
    np.testing.assert_array_equal(live[:10], 0.0)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_restart_idempotence(variant, data):
    """Stop, persist (JSON), restore from the stored bars, continue: no change."""
    p, model = target_params(data, variant), fitted(variant)
    first_live = BARS.n_bars - 30
    stop = data.draw(st.integers(first_live + 1, BARS.n_bars - 1), label="stop")
    history = BARS.iloc(slice(0, first_live))
    rest = BARS.iloc(slice(first_live, BARS.n_bars))
    uninterrupted = Stepper(STRATEGY, schedule(p, model), BARS.symbols, history=history).update_bars(rest)
    first = Stepper(STRATEGY, schedule(p, model), BARS.symbols, history=history)
    head = first.update_bars(BARS.iloc(slice(first_live, stop)))
    saved = json.loads(json.dumps(first.snapshot()))
    resumed = Stepper.restore(STRATEGY, schedule(p, model), saved, BARS)
    tail = resumed.update_bars(BARS.iloc(slice(stop, BARS.n_bars)))
    np.testing.assert_array_equal(np.vstack([head, tail]), uninterrupted)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_lookahead_check_passes_with_the_fitted_model(variant):
    report = check_strategy(STRATEGY, BARS, VARIANTS[variant], model=fitted(variant))
    assert report.ok, report.format()
    assert all(report.checks.values()) and len(report.checks) == 4


def test_lookahead_check_fits_on_the_first_half_without_a_model():
    bars = make_bars(n=2 * (WARMUP + 150), seed=5)
    report = check_strategy(STRATEGY, bars, BASE)
    assert report.ok, report.format()


def test_walk_forward_parity_with_a_model_per_fold():
    # guarantee 4 (tests/property/test_walkforward_parity.py has windows too short for this
    # strategy's warm-up): the stepper on the fold schedule, each entry carrying its fold's
    # model, reproduces the stitched out-of-sample targets
    bars = make_bars(n=500 + 3 * 60, seed=21)
    spec = WalkForwardSpec(windows=WindowSpec(train=500, test=60, purge=10),
                           search=SearchSpec(method="grid"), executor="serial")
    wf = walk_forward(STRATEGY, bars, BASE, spec, BacktestSpec())
    assert len(wf.splits) == 3
    for fold, entry in zip(wf.splits, wf.schedule, strict=True):
        # each fold's model learned from bars before its test window only
        assert entry.model.window[1] == bars.index[fold.train_end - 1].isoformat()
        assert fold.train_end <= fold.test_start
    first = wf.splits[0].test_start
    stepper = Stepper(STRATEGY, wf.schedule, bars.symbols, history=bars.iloc(slice(0, first)))
    live = stepper.update_bars(bars.iloc(slice(first, wf.splits[-1].test_end)))
    np.testing.assert_array_equal(live, wf.backtest.target)
    assert len(wf.model_evaluation.folds) == 3


# -- the fit itself -------------------------------------------------------------------------------
def _probabilities(model) -> np.ndarray:
    return STRATEGY.probabilities(STRATEGY.features(BARS, BASE), model)


@pytest.mark.parametrize("k", [WARMUP + 250, WARMUP + 330])
def test_fit_never_sees_bars_after_its_window(k):
    changed = perturb_after(BARS, k - 1, seed=k)
    direct = STRATEGY.fit(BARS.iloc(slice(0, k)), BASE)
    # through the walk-forward's fit window, on the original and on a changed future
    fold = Fold(0, WARMUP, k, k, BARS.n_bars)
    original, perturbed = (fit_models(STRATEGY, bars, fold, [BASE])[0] for bars in (BARS, changed))
    expected = _probabilities(direct)
    np.testing.assert_array_equal(_probabilities(original), expected)
    np.testing.assert_array_equal(_probabilities(perturbed), expected)
    # the labels near the window's end resolve inside it only: a fit on the changed bars
    # without the cut does see the change, so the comparison above has teeth
    leaky = STRATEGY.fit(changed, BASE)
    assert not np.array_equal(_probabilities(leaky), expected, equal_nan=True)


def test_same_seed_gives_identical_targets_with_search():
    p = MlParams(search=True, seed=3, cv_splits=3)
    bars = BARS.iloc(slice(0, WARMUP + 300))
    first, second = STRATEGY.fit(bars, p), STRATEGY.fit(bars, p)
    assert first.hyperparameters == second.hyperparameters
    np.testing.assert_array_equal(compute_target(STRATEGY, BARS, p, first),
                                  compute_target(STRATEGY, BARS, p, second))


def test_ensemble_fits_and_trades_within_bounds():
    p = MlParams(model="ensemble", search=False, cv_splits=3)
    model = STRATEGY.fit(BARS, p)
    assert model.kind == "ensemble" and len(model.members) == 3
    target = compute_target(STRATEGY, BARS, p, model)
    assert ((target >= 0) & (target <= 1)).all()


def test_predictions_pair_probabilities_with_outcomes():
    model = fitted("default")
    prob, outcome = STRATEGY.predictions(BARS, BASE, model)
    assert prob.shape == outcome.shape == (BARS.n_bars, 1)
    known = np.isfinite(outcome)
    assert set(np.unique(outcome[known])) <= {0.0, 1.0}
    assert not known[-1].any()  # the last bar's label is not resolved
    np.testing.assert_array_equal(prob, _probabilities(model))


# -- refusals and validation ----------------------------------------------------------------------
def test_target_without_a_model_says_how_to_get_one():
    with pytest.raises(StrategyError, match="`fw ml train ml_classifier"):
        compute_target(STRATEGY, BARS, BASE)


def test_a_model_with_features_the_strategy_lacks_is_refused():
    model = fitted("default")
    feats = STRATEGY.features(BARS, BASE)
    del feats["rsi"]
    with pytest.raises(StrategyError, match=r"features \['rsi'\].*retrain"):
        STRATEGY.target(feats, BASE, model)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": "logistc"}, r"unknown model 'logistc'\. Did you mean 'logistic'\?"),
        ({"model": "ensembel"}, r"Did you mean 'ensemble'\?"),
        ({"label": "forwrd"}, r"unknown label 'forwrd'\. Did you mean 'forward'\?"),
        ({"calibration": "sigmod"}, r"unknown calibration 'sigmod'\. Did you mean 'sigmoid'\?"),
        ({"scaling": "fixd"}, r"unknown scaling 'fixd'\. Did you mean 'fixed'\?"),
        ({"full_at": 0.6, "threshold": 0.6}, r"full_at \(0\.6\) must be above threshold \(0\.6\)"),
        ({"full_at": 0.55, "threshold": 0.6}, r"scaling=fixed"),
        ({"horizon": 0}, r"horizon = 0 is below its minimum 1"),
    ],
)
def test_params_validation(changes, message):
    with pytest.raises(ParameterError, match=message):
        MlParams(**changes)


def test_full_at_below_threshold_is_fine_with_fixed_scaling():
    p = MlParams(scaling="fixed", threshold=0.6, full_at=0.55)
    assert p.full_at < p.threshold


def test_an_uninstalled_model_library_is_a_parameter_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == "xgboost" else real(name, *a, **k))
    with pytest.raises(ParameterError, match=r"needs the xgboost package.*fw\[ml\]"):
        MlParams(model="xgboost")


def test_fit_params_are_fit_stage_and_sizing_params_target_stage():
    # the search refits only for features/fit changes: sizing must be target-stage
    meta = MlParams.meta()
    for name in ("model", "label", "horizon", "barrier", "meta_label", "calibration", "search",
                 "cv_splits", "seed"):
        assert meta[name].stage == "fit", name
    for name in ("threshold", "scaling", "full_at", "long_only", "kelly"):
        assert meta[name].stage == "target", name


# -- real data ------------------------------------------------------------------------------------
@pytest.mark.realdata
def test_fit_on_spy_1993_2004_and_trade_2005_2007(shared_data):
    spy = load_bars(["SPY"], data_dir=shared_data / "daily")
    train = spy.between(None, "2004-12-31")
    model = STRATEGY.fit(train, BASE)
    assert model.window[1] < "2005"
    assert model.n_samples > 2000
    upto = spy.between(None, "2007-12-31")
    target = compute_target(STRATEGY, upto, BASE, model)
    test_rows = upto.index >= "2005-01-01"
    assert test_rows.sum() > 700
    window = target[test_rows]
    assert np.isfinite(window).all()
    assert ((window >= 0) & (window <= 1)).all()
