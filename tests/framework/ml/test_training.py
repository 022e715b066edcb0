"""fit_classifier / fit_ensemble: they find a planted signal, find nothing in noise, are
reproducible, calibrate, weight ensemble members sensibly and refuse untrainable data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

from framework.errors import DataError, ParameterError
from framework.ml.models import MODEL_KINDS, available_kinds
from framework.ml.training import (
    TrainingSet,
    TrainSpec,
    classification_metrics,
    fit_classifier,
    fit_ensemble,
    payoff_ratio,
    simplex_weights,
)

FAST = dict(search=False, cv_splits=3, embargo=2)


def planted(n: int = 400, signal: float = 2.0, seed: int = 0, n_features: int = 4,
            horizon: int = 1) -> TrainingSet:
    """Rows whose label follows a logistic link on feature 0 (``signal`` = its slope; 0 = noise).

    Each row starts at its own bar and its label resolves ``horizon`` bars later, like daily
    forward labels of one asset.
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features))
    prob = 1.0 / (1.0 + np.exp(-signal * X[:, 0]))
    y = (rng.random(n) < prob).astype(np.int64)
    start = np.arange(n, dtype=np.int64)
    ret = np.where(y == 1, 1.0, -1.0) * rng.uniform(0.005, 0.015, n)
    return TrainingSet(X=X, y=y, weight=np.ones(n), start=start, end=start + horizon, ret=ret,
                       feature_names=tuple(f"f{i}" for i in range(n_features)))


def _skip_missing(kind: str) -> None:
    if kind not in available_kinds():
        pytest.skip(f"{kind} is not installed (optional ml extra); cannot fit it here")


# -- planted signal and noise -----------------------------------------------------------------
def test_planted_signal_is_found_out_of_fold():
    model = fit_classifier(planted(n=600, seed=1), TrainSpec(kind="logistic", seed=0))
    overall = model.validation["overall"]
    assert overall["auc"] > 0.6
    assert overall["n"] == 600  # every row is scored exactly once out of fold
    assert len(model.validation["splits"]) == 4
    assert model.oof is not None and np.isfinite(model.oof).all()
    # feature 0 carries the signal, so it dominates the importance
    assert max(model.importance, key=model.importance.get) == "f0"


def test_predict_up_gives_nan_for_rows_with_a_missing_feature():
    data = planted(seed=2)
    model = fit_classifier(data, TrainSpec(kind="logistic", **FAST))
    X = data.X[:6].copy()
    X[1, 0] = np.nan
    X[4, 3] = np.inf
    prob = model.predict_up(X)
    assert np.isnan(prob[[1, 4]]).all()
    ok = [0, 2, 3, 5]
    # the finite rows get the same probabilities as when predicted on their own
    np.testing.assert_array_equal(prob[ok], model.predict_up(X[ok]))
    assert ((prob[ok] > 0) & (prob[ok] < 1)).all()
    # the probability rises with the planted feature
    grid = np.zeros((5, 4))
    grid[:, 0] = np.linspace(-2, 2, 5)
    assert (np.diff(model.predict_up(grid)) > 0).all()


def test_all_nan_rows_predict_all_nan():
    model = fit_classifier(planted(seed=3), TrainSpec(kind="logistic", **FAST))
    assert np.isnan(model.predict_up(np.full((3, 4), np.nan))).all()


def test_noise_scores_near_a_coin_flip_out_of_fold_but_not_in_sample():
    data = planted(n=1500, signal=0.0, seed=0)
    model = fit_classifier(data, TrainSpec(kind="random_forest", search=False, calibration="none"))
    assert abs(model.validation["overall"]["auc"] - 0.5) < 0.08
    # a forest memorises part of the noise: in-sample looks better than it is
    assert model.in_sample["auc"] > model.validation["overall"]["auc"] + 0.08


# -- every kind, reproducibility ----------------------------------------------------------------
@pytest.fixture(scope="module")
def kind_fits() -> dict:
    """Two fits per kind with the same seed (and one with another seed for the forest)."""
    return {}


def _fit_twice(kind: str, cache: dict):
    if kind not in cache:
        data = planted(n=300, seed=4)
        spec = TrainSpec(kind=kind, seed=7, **FAST)
        cache[kind] = (data, fit_classifier(data, spec), fit_classifier(data, spec))
    return cache[kind]


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_every_kind_fits_and_finds_the_signal(kind, kind_fits):
    _skip_missing(kind)
    data, model, _ = _fit_twice(kind, kind_fits)
    assert model.kind == kind and model.n_samples == data.n_samples
    assert model.validation["overall"]["auc"] > 0.6
    prob = model.predict_up(data.X)
    assert prob.shape == (data.n_samples,) and ((prob >= 0) & (prob <= 1)).all()
    assert model.describe()["kind"] == kind


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_a_rows_probability_does_not_depend_on_the_rows_predicted_with_it(kind, kind_fits):
    # live trading predicts a growing prefix, a backtest every bar at once: bit for bit the same
    # (scikit-learn's BLAS-based logistic scores differed by an ulp between batch sizes)
    _skip_missing(kind)
    data, model, _ = _fit_twice(kind, kind_fits)
    full = model.predict_up(data.X)
    for k in (1, 2, 3, 5, 8, 13, 64, 101, 255, 299):
        np.testing.assert_array_equal(model.predict_up(data.X[:k]), full[:k])
        np.testing.assert_array_equal(model.predict_up(data.X[k - 1 : k]), full[k - 1 : k])


def test_ensemble_rows_do_not_depend_on_the_batch_either():
    data = planted(n=300, seed=9)
    model = fit_ensemble(data, ["logistic", "gradient_boosting"], TrainSpec(**FAST))
    full = model.predict_up(data.X)
    for k in range(1, 300, 9):
        np.testing.assert_array_equal(model.predict_up(data.X[:k]), full[:k])
        np.testing.assert_array_equal(model.predict_up(data.X[k - 1 : k]), full[k - 1 : k])


@pytest.mark.parametrize("kind", ["logistic", "random_forest", "lightgbm", "xgboost"])
def test_same_seed_gives_identical_predictions(kind, kind_fits):
    _skip_missing(kind)
    data, first, second = _fit_twice(kind, kind_fits)
    np.testing.assert_array_equal(first.predict_up(data.X), second.predict_up(data.X))
    np.testing.assert_array_equal(first.oof, second.oof)


def test_searched_fit_is_reproducible_too():
    data = planted(n=300, seed=5)
    spec = TrainSpec(kind="logistic", search=True, cv_splits=3)
    a, b = fit_classifier(data, spec), fit_classifier(data, spec)
    assert a.hyperparameters == b.hyperparameters and a.hyperparameters["searched"] is True
    np.testing.assert_array_equal(a.predict_up(data.X), b.predict_up(data.X))


def test_another_seed_changes_the_forest(kind_fits):
    data, first, _ = _fit_twice("random_forest", kind_fits)
    other = fit_classifier(data, TrainSpec(kind="random_forest", seed=8, **FAST))
    assert not np.array_equal(first.predict_up(data.X), other.predict_up(data.X))


# -- calibration ----------------------------------------------------------------------------------
@pytest.mark.parametrize("calibration", ["none", "sigmoid", "isotonic"])
def test_each_calibration_gives_probabilities_that_follow_the_signal(calibration):
    data = planted(n=400, seed=6)
    model = fit_classifier(data, TrainSpec(kind="logistic", calibration=calibration, **FAST))
    assert model.hyperparameters["calibration"] == calibration
    assert isinstance(model.estimator, CalibratedClassifierCV) == (calibration != "none")
    prob = model.predict_up(data.X)
    assert ((prob >= 0) & (prob <= 1)).all()
    assert model.in_sample["auc"] > 0.75
    # calibrated or not, the average probability is close to the share of positive labels
    assert abs(prob.mean() - data.y.mean()) < 0.05


def test_isotonic_calibration_is_a_step_function():
    data = planted(n=400, seed=6)
    sigmoid = fit_classifier(data, TrainSpec(kind="logistic", calibration="sigmoid", **FAST))
    isotonic = fit_classifier(data, TrainSpec(kind="logistic", calibration="isotonic", **FAST))
    # Platt scaling is strictly monotone (one value per row); isotonic pools rows into steps
    assert np.unique(sigmoid.predict_up(data.X)).size == data.n_samples
    assert np.unique(isotonic.predict_up(data.X)).size < data.n_samples / 2


# -- ensembles ------------------------------------------------------------------------------------
def test_ensemble_weights_lie_on_the_simplex_and_blend_the_members():
    data = planted(n=300, seed=9)
    model = fit_ensemble(data, ["logistic", "gradient_boosting"], TrainSpec(**FAST))
    w = np.asarray(model.weights)
    assert w.shape == (2,) and (w >= 0).all() and math.isclose(w.sum(), 1.0, rel_tol=1e-12)
    assert [m.kind for m in model.members] == ["logistic", "gradient_boosting"]
    blend = np.column_stack([m.predict_up(data.X) for m in model.members]) @ w
    np.testing.assert_allclose(model.predict_up(data.X), blend, rtol=1e-12)
    assert model.validation["overall"]["auc"] > 0.6
    assert math.isclose(sum(model.importance.values()), 1.0, rel_tol=1e-9)
    assert model.describe()["members"] == ["logistic", "gradient_boosting"]


@pytest.mark.parametrize("kinds", [[], ["logistic"]])
def test_ensemble_needs_two_kinds(kinds):
    with pytest.raises(ParameterError, match="at least two model kinds"):
        fit_ensemble(planted(), kinds, TrainSpec(**FAST))


def test_simplex_weights_prefer_the_informative_member():
    rng = np.random.default_rng(10)
    n = 2000
    truth = rng.uniform(0.05, 0.95, n)
    y = (rng.random(n) < truth).astype(np.int64)
    noise = rng.uniform(0.3, 0.7, n)  # a member that knows nothing
    w = simplex_weights(np.column_stack([noise, truth]), y)
    assert (w >= 0).all() and math.isclose(w.sum(), 1.0, rel_tol=1e-12)
    assert w[1] > 0.8


def test_simplex_weights_without_rows_are_uniform():
    np.testing.assert_array_equal(simplex_weights(np.empty((0, 4)), np.empty(0)), np.full(4, 0.25))


# -- refusals and validation --------------------------------------------------------------------
def test_too_few_rows_is_a_data_error_naming_the_count():
    data = planted(n=50)
    with pytest.raises(DataError, match=r"only 50 labelled rows.*4-split.*at least 80"):
        fit_classifier(data, TrainSpec(cv_splits=4))


@pytest.mark.parametrize("value", [0, 1])
def test_a_single_class_is_a_data_error(value):
    data = planted(n=200)
    one_class = TrainingSet(data.X, np.full(200, value), data.weight, data.start, data.end,
                            data.ret, data.feature_names)
    with pytest.raises(DataError, match=f"every training label is {value}.*both outcomes"):
        fit_classifier(one_class, TrainSpec(**FAST))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(kind="logistc"), r"unknown model 'logistc'\. Did you mean 'logistic'\?"),
        (dict(calibration="platt"), r"unknown calibration 'platt'.*isotonic, none, sigmoid"),
        (dict(cv_splits=1), r"cv_splits must be >= 2; got 1"),
        (dict(embargo=-1), r"embargo must be >= 0 bars; got -1"),
    ],
)
def test_train_spec_rejects_bad_values(changes, message):
    with pytest.raises(ParameterError, match=message):
        TrainSpec(**changes)


def test_train_spec_defaults_are_valid():
    spec = TrainSpec()
    assert (spec.kind, spec.calibration, spec.cv_splits) == ("logistic", "sigmoid", 4)


# -- metrics --------------------------------------------------------------------------------------
def test_classification_metrics_match_sklearn_on_a_hand_case():
    y = np.array([0, 0, 1, 1, 1, 0])
    prob = np.array([0.1, 0.6, 0.8, 0.4, 0.9, 0.3])
    got = classification_metrics(y, prob)
    # by hand: predictions at 0.5 are 0,1,1,0,1,0 -> 4 of 6 right; of the 9 (pos, neg) pairs
    # only (0.4 vs 0.6) is ordered wrongly -> AUC 8/9
    assert got["n"] == 6
    assert math.isclose(got["accuracy"], 4 / 6)
    assert math.isclose(got["auc"], 8 / 9)
    assert math.isclose(got["base_rate"], 0.5)
    assert math.isclose(got["accuracy"], accuracy_score(y, prob >= 0.5))
    assert math.isclose(got["auc"], roc_auc_score(y, prob))
    assert math.isclose(got["log_loss"], log_loss(y, prob))
    assert math.isclose(got["brier"], brier_score_loss(y, prob))
    assert math.isclose(got["brier"], float(np.mean((prob - y) ** 2)))


def test_classification_metrics_weighted_match_sklearn():
    y = np.array([0, 1, 1, 0, 1])
    prob = np.array([0.2, 0.7, 0.45, 0.55, 0.9])
    w = np.array([1.0, 2.0, 0.5, 1.5, 1.0])
    got = classification_metrics(y, prob, w)
    assert math.isclose(got["auc"], roc_auc_score(y, prob, sample_weight=w))
    assert math.isclose(got["log_loss"], log_loss(y, prob, sample_weight=w))
    assert math.isclose(got["brier"], brier_score_loss(y, prob, sample_weight=w))
    assert math.isclose(got["base_rate"], 3.5 / 6.0)


def test_classification_metrics_single_class_has_nan_auc_and_finite_rest():
    got = classification_metrics(np.array([1, 1, 1]), np.array([0.2, 0.6, 0.9]))
    assert math.isnan(got["auc"])
    assert math.isclose(got["accuracy"], 2 / 3)
    assert math.isclose(got["log_loss"], -np.mean(np.log([0.2, 0.6, 0.9])))
    assert got["base_rate"] == 1.0


def test_classification_metrics_of_nothing_are_nan():
    got = classification_metrics(np.empty(0), np.empty(0))
    assert got["n"] == 0
    assert all(math.isnan(got[k]) for k in ("accuracy", "auc", "log_loss", "brier"))


def test_classification_metrics_clip_certain_probabilities():
    # a certain, wrong prediction is a large but finite log loss
    got = classification_metrics(np.array([0, 1]), np.array([1.0, 0.0]))
    assert math.isfinite(got["log_loss"]) and got["log_loss"] > 20


def test_payoff_ratio():
    assert payoff_ratio(np.array([0.02, 0.04, -0.01, -0.03, np.nan])) == pytest.approx(1.5)
    assert payoff_ratio(np.array([0.02, 0.01])) == 1.0  # no losses: neutral
    assert payoff_ratio(np.array([])) == 1.0
