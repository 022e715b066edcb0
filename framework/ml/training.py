"""Fitting a probability model on one training window: purged search, calibration, ensembles.

:func:`fit_classifier` is what a learned strategy's ``fit`` calls with the rows of its training
window. In order:

1. inputs are standardized with the training rows' mean and standard deviation (kept in the
   model, so prediction applies the same transform);
2. with ``search=True`` the estimator's grid (:func:`framework.ml.models.search_grid`) is searched
   by log loss with **purged, embargoed** cross-validation (:mod:`framework.ml.cv`): no
   training label overlaps a validation bar, so overlapping forward labels cannot leak;
3. the chosen estimator is scored out of fold on the same splits (accuracy, AUC, log loss,
   Brier score per split): the honest in-sample validation numbers a registry card keeps;
4. probabilities are calibrated (Platt ``sigmoid`` or ``isotonic``) on those splits, or the
   estimator is refitted on all rows (``calibration="none"``).

:func:`fit_ensemble` fits several kinds on the same splits and learns soft-voting weights that
minimise the out-of-fold log loss (weights on the simplex): the weights never see the bars they
are judged on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from framework.errors import DataError, ParameterError, unknown_name_message
from framework.ml.models import check_kind, feature_importance, make_estimator, search_grid

CALIBRATIONS: tuple[str, ...] = ("none", "sigmoid", "isotonic")


@dataclass(frozen=True)
class TrainSpec:
    """How to fit one model.

    Attributes
    ----------
    kind : str
        Estimator kind (:data:`framework.ml.models.MODEL_KINDS`).
    seed : int
        Random state of the estimator.
    search : bool
        Search the kind's hyper-parameter grid (else its first grid point).
    cv_splits : int
        Purged cross-validation splits used by the search, the validation scores and the
        calibration.
    embargo : int
        Bars after each validation block excluded from training.
    calibration : {"none", "sigmoid", "isotonic"}
        Probability calibration on the purged splits.
    """

    kind: str = "logistic"
    seed: int = 0
    search: bool = True
    cv_splits: int = 4
    embargo: int = 5
    calibration: str = "sigmoid"

    def __post_init__(self) -> None:
        check_kind(self.kind)
        if self.calibration not in CALIBRATIONS:
            raise ParameterError(unknown_name_message("calibration", self.calibration, CALIBRATIONS))
        if self.cv_splits < 2:
            raise ParameterError(f"cv_splits must be >= 2; got {self.cv_splits}.")
        if self.embargo < 0:
            raise ParameterError(f"embargo must be >= 0 bars; got {self.embargo}.")


@dataclass(frozen=True, eq=False)
class TrainingSet:
    """The rows a model learns from.

    Attributes
    ----------
    X : (n, f) ndarray
        Feature rows (finite).
    y : (n,) ndarray
        1 where the label is positive (up / the primary signal was right), else 0.
    weight : (n,) ndarray
        Sample weights (average label uniqueness).
    start, end : (n,) int ndarray
        Bar index of each row's decision and of its label's resolution (for purging).
    ret : (n,) ndarray
        The return each label realised (payoff estimate for Kelly sizing).
    feature_names : tuple of str
    """

    X: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    start: np.ndarray
    end: np.ndarray
    ret: np.ndarray
    feature_names: tuple[str, ...]

    @property
    def n_samples(self) -> int:
        return int(self.y.shape[0])


@dataclass(eq=False)
class TrainedModel:
    """A fitted probability model and what is known about it.

    ``predict_up(X)`` returns the probability that the label is positive for each feature row
    (``nan`` for rows with a missing feature). ``validation`` holds the purged out-of-fold
    scores, ``in_sample`` the scores on the training rows themselves (optimistic by
    construction; shown next to validation so the gap is visible).
    """

    kind: str
    estimator: Any
    feature_names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    hyperparameters: dict[str, Any]
    validation: dict[str, Any]
    in_sample: dict[str, float]
    payoff: float
    n_samples: int
    importance: dict[str, float] | None = None
    members: tuple[TrainedModel, ...] = ()
    weights: tuple[float, ...] = ()
    oof: np.ndarray | None = field(default=None, repr=False)
    window: tuple[str, str] | None = None  # first and last training bar (close times, ISO)

    def predict_up(self, X: np.ndarray) -> np.ndarray:
        """Probability of a positive label per row of ``X`` (``nan`` where a feature is)."""
        X = np.asarray(X, dtype=np.float64)
        out = np.full(X.shape[0], np.nan)
        ok = np.isfinite(X).all(axis=1)
        if ok.any():
            out[ok] = self._predict_rows(X[ok])
        return out

    def _predict_rows(self, X: np.ndarray) -> np.ndarray:
        if self.members:
            # a running sum, not a matrix product: BLAS would round a row differently
            # depending on how many rows are predicted together (live = vectorized, bit for bit)
            blend = np.zeros(X.shape[0])
            for member, weight in zip(self.members, self.weights, strict=True):
                blend += weight * member._predict_rows(X)
            return blend
        z = (X - self.mean) / self.scale
        return self.estimator.predict_proba(z)[:, 1]

    def describe(self) -> dict[str, Any]:
        """JSON-safe summary for a registry card or report."""
        out = {
            "kind": self.kind,
            "hyperparameters": self.hyperparameters,
            "validation": self.validation,
            "in_sample": self.in_sample,
            "payoff": self.payoff,
            "n_samples": self.n_samples,
            "importance": self.importance,
            "window": list(self.window) if self.window else None,
        }
        if self.members:
            out["members"] = [m.kind for m in self.members]
            out["weights"] = list(self.weights)
        return out


def classification_metrics(y: np.ndarray, prob: np.ndarray, weight: np.ndarray | None = None) -> dict[str, float]:
    """Accuracy (at 0.5), ROC AUC, log loss and Brier score of probabilities ``prob`` for 0/1
    labels ``y``; ``nan`` for AUC when only one class is present."""
    from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

    y = np.asarray(y)
    prob = np.clip(np.asarray(prob, dtype=np.float64), 1e-12, 1 - 1e-12)
    if y.size == 0:
        return {"n": 0, "accuracy": math.nan, "auc": math.nan, "log_loss": math.nan, "brier": math.nan,
                "base_rate": math.nan}
    two_classes = np.unique(y).size == 2
    return {
        "n": int(y.size),
        "accuracy": float(accuracy_score(y, prob >= 0.5, sample_weight=weight)),
        "auc": float(roc_auc_score(y, prob, sample_weight=weight)) if two_classes else math.nan,
        "log_loss": float(log_loss(y, prob, labels=[0, 1], sample_weight=weight)),
        "brier": float(brier_score_loss(y, prob, sample_weight=weight, pos_label=1)),
        "base_rate": float(np.average(y, weights=weight)),
    }


def fit_classifier(data: TrainingSet, spec: TrainSpec) -> TrainedModel:
    """Fit one model on ``data`` as described in the module docstring.

    Raises
    ------
    DataError
        Too few rows, or a single class, to train and validate on.
    """
    _check_trainable(data, spec)
    splits = _splits(data, spec)
    mean, scale = _standardizer(data.X)
    z = (data.X - mean) / scale
    hyper = _search(z, data, spec, splits) if spec.search else {}
    oof, per_split = _out_of_fold(z, data, spec, hyper, splits)
    known = ~np.isnan(oof)
    validation = {
        "overall": classification_metrics(data.y[known], oof[known]),
        "splits": per_split,
    }
    estimator = _final_estimator(z, data, spec, hyper, splits)
    in_sample = classification_metrics(data.y, estimator.predict_proba(z)[:, 1])
    importance = feature_importance(estimator, len(data.feature_names))
    return TrainedModel(
        kind=spec.kind,
        estimator=estimator,
        feature_names=data.feature_names,
        mean=mean,
        scale=scale,
        hyperparameters=_resolved_hyper(spec, hyper),
        validation=validation,
        in_sample=in_sample,
        payoff=payoff_ratio(data.ret),
        n_samples=data.n_samples,
        importance=dict(zip(data.feature_names, importance, strict=True)) if importance else None,
        oof=oof,
    )


def fit_ensemble(data: TrainingSet, kinds: Sequence[str], spec: TrainSpec) -> TrainedModel:
    """Soft-voting ensemble of ``kinds``; weights minimise the members' out-of-fold log loss."""
    if len(kinds) < 2:
        raise ParameterError(f"an ensemble needs at least two model kinds; got {list(kinds)}.")
    members = tuple(fit_classifier(data, replace(spec, kind=k)) for k in kinds)
    probs = np.column_stack([m.oof for m in members])
    known = ~np.isnan(probs).any(axis=1)
    weights = simplex_weights(probs[known], data.y[known])
    oof = np.full(data.n_samples, np.nan)
    oof[known] = probs[known] @ weights
    model = TrainedModel(
        kind="ensemble",
        estimator=None,
        feature_names=data.feature_names,
        mean=members[0].mean,
        scale=members[0].scale,
        hyperparameters={m.kind: m.hyperparameters for m in members},
        validation={"overall": classification_metrics(data.y[known], oof[known]),
                    "splits": members[0].validation["splits"]},
        in_sample={},
        payoff=members[0].payoff,
        n_samples=data.n_samples,
        importance=_blend_importance(members, weights),
        members=members,
        weights=tuple(float(w) for w in weights),
        oof=oof,
    )
    model.in_sample = classification_metrics(data.y, model.predict_up(data.X))
    return model


def simplex_weights(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative weights summing to one that minimise the log loss of ``probs @ w``."""
    from scipy.optimize import minimize

    k = probs.shape[1]
    if probs.shape[0] == 0:
        return np.full(k, 1.0 / k)
    clipped = np.clip(probs, 1e-6, 1 - 1e-6)

    def loss(theta: np.ndarray) -> float:
        w = np.exp(theta - theta.max())
        w /= w.sum()
        p = clipped @ w
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    found = minimize(loss, np.zeros(k), method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-9})
    w = np.exp(found.x - found.x.max())
    return w / w.sum()


def payoff_ratio(ret: np.ndarray) -> float:
    """Average winning label return over average losing one (``b`` of the Kelly formula);
    1.0 when either side is empty."""
    ret = np.asarray(ret, dtype=np.float64)
    ret = ret[np.isfinite(ret)]
    wins, losses = ret[ret > 0], -ret[ret < 0]
    if wins.size == 0 or losses.size == 0 or losses.mean() == 0:
        return 1.0
    return float(wins.mean() / losses.mean())


# -- internals ---------------------------------------------------------------------------------
def _check_trainable(data: TrainingSet, spec: TrainSpec) -> None:
    minimum = 20 * spec.cv_splits
    if data.n_samples < minimum:
        raise DataError(
            f"only {data.n_samples} labelled rows to train on; a {spec.cv_splits}-split purged "
            f"cross-validation needs at least {minimum}. Give the model a longer training window "
            "(e.g. a longer --train in walk-forward) or a shorter label horizon."
        )
    classes = np.unique(data.y)
    if classes.size < 2:
        raise DataError(
            f"every training label is {int(classes[0])}; a classifier needs both outcomes. "
            "Use a longer training window or another label."
        )


def _splits(data: TrainingSet, spec: TrainSpec) -> list[tuple[np.ndarray, np.ndarray]]:
    from framework.ml.cv import PurgedSplitSpec, purged_splits

    splits = purged_splits(data.start, data.end, PurgedSplitSpec(spec.cv_splits, spec.embargo))
    usable = [(tr, va) for tr, va in splits if np.unique(data.y[tr]).size == 2]
    if not usable:
        raise DataError("no purged cross-validation split has both label outcomes in its training part.")
    return usable


def _standardizer(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[~(scale > 0)] = 1.0  # a constant column stays constant (0) instead of dividing by 0
    return mean, scale


def _search(z, data, spec, splits) -> dict[str, Any]:
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(
        make_estimator(spec.kind, spec.seed), search_grid(spec.kind), scoring="neg_log_loss",
        cv=splits, n_jobs=1, refit=False, error_score="raise",
    )
    search.fit(z, data.y, sample_weight=data.weight)
    return dict(search.best_params_)


def _out_of_fold(z, data, spec, hyper, splits) -> tuple[np.ndarray, list[dict[str, float]]]:
    oof = np.full(data.n_samples, np.nan)
    per_split = []
    for train, valid in splits:
        est = make_estimator(spec.kind, spec.seed, hyper)
        est.fit(z[train], data.y[train], sample_weight=data.weight[train])
        oof[valid] = est.predict_proba(z[valid])[:, 1]
        per_split.append(classification_metrics(data.y[valid], oof[valid]))
    return oof, per_split


def _final_estimator(z, data, spec, hyper, splits):
    est = make_estimator(spec.kind, spec.seed, hyper)
    if spec.calibration == "none":
        return est.fit(z, data.y, sample_weight=data.weight)
    from sklearn.calibration import CalibratedClassifierCV

    calibrated = CalibratedClassifierCV(est, method=spec.calibration, cv=splits)
    return calibrated.fit(z, data.y, sample_weight=data.weight)


def _resolved_hyper(spec: TrainSpec, hyper: dict[str, Any]) -> dict[str, Any]:
    from framework.ml.models import default_hyperparameters

    return {**default_hyperparameters(spec.kind), **hyper, "calibration": spec.calibration,
            "searched": spec.search}


def _blend_importance(members, weights) -> dict[str, float] | None:
    if any(m.importance is None for m in members):
        return None
    names = members[0].feature_names
    return {n: float(sum(w * m.importance[n] for m, w in zip(members, weights, strict=True))) for n in names}
