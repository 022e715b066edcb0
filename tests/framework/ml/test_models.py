"""Model kinds: clear errors for unknown or uninstalled kinds, seeded estimators, importance."""

from __future__ import annotations

import importlib.util
import math
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.neighbors import KNeighborsClassifier

from framework.errors import DataError, ParameterError
from framework.ml import models
from framework.ml.models import (
    MODEL_KINDS,
    available_kinds,
    check_kind,
    default_hyperparameters,
    feature_importance,
    make_estimator,
    search_grid,
)


def _rows(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Feature 0 decides the label (with noise); features 1 and 2 are noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(np.int64)
    return X, y


def _hide(monkeypatch: pytest.MonkeyPatch, *missing: str) -> None:
    """Make ``importlib.util.find_spec`` report ``missing`` modules as not installed."""
    real = importlib.util.find_spec

    def fake(name, *args, **kwargs):
        return None if name in missing else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", fake)


def test_check_kind_accepts_every_installed_kind():
    for kind in available_kinds():
        assert check_kind(kind) == kind
    assert set(available_kinds()) >= {"logistic", "random_forest", "gradient_boosting"}


@pytest.mark.parametrize(("kind", "suggestion"), [("random_forrest", "random_forest"),
                                                  ("xgbost", "xgboost")])
def test_unknown_kind_suggests_the_closest(kind, suggestion):
    with pytest.raises(ParameterError) as caught:
        check_kind(kind)
    message = str(caught.value)
    assert f"unknown model {kind!r}" in message
    assert f"Did you mean {suggestion!r}?" in message
    assert all(k in message for k in MODEL_KINDS)  # the valid names are listed


def test_unknown_kind_far_from_everything_lists_the_choices_without_a_guess():
    with pytest.raises(ParameterError, match="Valid models: gradient_boosting") as caught:
        check_kind("zzz")
    assert "Did you mean" not in str(caught.value)


@pytest.mark.parametrize("kind", ["lightgbm", "xgboost"])
def test_missing_optional_library_says_how_to_install_it(kind, monkeypatch):
    _hide(monkeypatch, kind)
    with pytest.raises(ParameterError) as caught:
        check_kind(kind)
    message = str(caught.value)
    assert f"model {kind!r} needs the {kind} package, which is not installed" in message
    assert "pip install 'fw[ml]'" in message
    assert "logistic, random_forest, gradient_boosting" in message
    assert kind not in available_kinds()
    with pytest.raises(ParameterError, match="not installed"):
        make_estimator(kind, 0)
    # the core kinds do not depend on the optional libraries
    assert check_kind("logistic") == "logistic"


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_make_estimator_is_seeded_with_the_grid_defaults(kind):
    if kind not in available_kinds():
        pytest.skip(f"{kind} is not installed (optional ml extra)")
    est = make_estimator(kind, seed=42)
    params = est.get_params()
    assert params["random_state"] == 42
    for name, value in default_hyperparameters(kind).items():
        assert params[name] == value
    if "n_jobs" in params:
        # single-threaded (None is joblib's default of one job): folds run in parallel processes
        assert params["n_jobs"] in (None, 1)
    # overrides win over the defaults; a fresh estimator each call
    name, values = next(iter(search_grid(kind).items()))
    other = make_estimator(kind, seed=3, hyperparameters={name: values[-1]})
    assert other.get_params()[name] == values[-1] and other.get_params()["random_state"] == 3
    assert make_estimator(kind, 42) is not est


def test_same_seed_same_forest_other_seed_other_forest():
    X, y = _rows()
    a = make_estimator("random_forest", 1).fit(X, y).predict_proba(X)[:, 1]
    b = make_estimator("random_forest", 1).fit(X, y).predict_proba(X)[:, 1]
    c = make_estimator("random_forest", 2).fit(X, y).predict_proba(X)[:, 1]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_search_grid_is_a_copy():
    grid = search_grid("logistic")
    grid["C"].append(99.0)
    assert 99.0 not in search_grid("logistic")["C"]
    assert default_hyperparameters("logistic") == {"C": search_grid("logistic")["C"][0]}


@pytest.mark.parametrize("kind", ["logistic", "random_forest"])
def test_feature_importance_sums_to_one_and_ranks_the_informative_feature(kind):
    X, y = _rows()
    est = make_estimator(kind, 0).fit(X, y)
    importance = feature_importance(est, 3)
    assert len(importance) == 3 and all(v >= 0 for v in importance)
    assert math.isclose(sum(importance), 1.0, rel_tol=1e-12)
    assert int(np.argmax(importance)) == 0


def test_logistic_importance_is_the_normalised_absolute_coefficient():
    X, y = _rows()
    est = make_estimator("logistic", 0).fit(X, y)
    coef = np.abs(est.coef_.reshape(-1))
    np.testing.assert_allclose(feature_importance(est, 3), coef / coef.sum(), rtol=1e-12)


def test_feature_importance_averages_calibrated_copies():
    X, y = _rows()
    calibrated = CalibratedClassifierCV(make_estimator("logistic", 0), cv=3).fit(X, y)
    coefs = [np.abs(c.estimator.coef_.reshape(-1)) for c in calibrated.calibrated_classifiers_]
    expected = np.mean(coefs, axis=0)
    np.testing.assert_allclose(feature_importance(calibrated, 3), expected / expected.sum(),
                               rtol=1e-12)


def test_feature_importance_is_none_without_coefficients_or_importances():
    X, y = _rows()
    assert feature_importance(KNeighborsClassifier().fit(X, y), 3) is None


def test_logistic_scores_rows_independently_and_like_scikit_learn():
    from sklearn.linear_model import LogisticRegression

    X, y = _rows(n=500)
    ours = make_estimator("logistic", 0).fit(X, y)
    plain = LogisticRegression(max_iter=1000, random_state=0, C=ours.C).fit(X, y)
    np.testing.assert_array_equal(ours.coef_, plain.coef_)  # the fit itself is scikit-learn's
    # same scores up to rounding, but each row's score is the same in any batch
    np.testing.assert_allclose(ours.decision_function(X), plain.decision_function(X), rtol=1e-12,
                               atol=1e-12)
    full = ours.predict_proba(X)
    for k in (1, 3, 17, 250, 499):
        np.testing.assert_array_equal(ours.predict_proba(X[:k]), full[:k])
    with pytest.raises(DataError, match=r"expects rows of 3 features; got an array of shape \(2, 2\)"):
        ours.decision_function(X[:2, :2])


def test_logistic_estimator_pickles_by_name():
    X, y = _rows()
    est = make_estimator("logistic", 0).fit(X, y)
    from framework.ml.rowwise import RowwiseLogisticRegression

    assert type(est) is RowwiseLogisticRegression
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict_proba(X), est.predict_proba(X))
    # an unfitted copy (what the searches and calibration make) keeps the class
    assert type(clone(est)) is type(est)


def test_optional_kinds_table_matches_the_kinds():
    # every optional kind is a known kind, and the installed ones are exactly those importable
    assert set(models._OPTIONAL) <= set(MODEL_KINDS)
    for kind, module in models._OPTIONAL.items():
        assert (kind in available_kinds()) == (importlib.util.find_spec(module) is not None)
