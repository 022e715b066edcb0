"""The estimators learned strategies choose from, and the hyper-parameter grids searched for each.

``logistic``, ``random_forest`` and ``gradient_boosting`` come from scikit-learn (a core
dependency); ``lightgbm`` and ``xgboost`` need the ``ml`` extra (``pip install fw[ml]``) and
raise a :class:`~framework.errors.ParameterError` saying so when missing. Every estimator is
seeded and single-threaded, so a fit is reproducible bit for bit and walk-forward folds can run
in parallel processes without oversubscribing the cores.

The grids are deliberately small: each point is fitted once per purged cross-validation split
inside every walk-forward fold, and a wide grid over a few hundred noisy daily labels mostly
buys overfitting (the walk-forward report's PBO says how much).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

from framework.errors import ParameterError, unknown_name_message

MODEL_KINDS: tuple[str, ...] = (
    "logistic",
    "random_forest",
    "gradient_boosting",
    "lightgbm",
    "xgboost",
)

# the module each optional kind needs, and the pip extra that installs it
_OPTIONAL = {"lightgbm": "lightgbm", "xgboost": "xgboost"}

_GRIDS: dict[str, dict[str, list[Any]]] = {
    "logistic": {"C": [0.01, 0.1, 1.0]},
    "random_forest": {"max_depth": [3, 6], "min_samples_leaf": [20, 50]},
    "gradient_boosting": {"max_depth": [2, 3], "learning_rate": [0.05, 0.1]},
    "lightgbm": {"num_leaves": [7, 15], "learning_rate": [0.05, 0.1]},
    "xgboost": {"max_depth": [2, 4], "learning_rate": [0.05, 0.1]},
}


def check_kind(kind: str) -> str:
    """Return ``kind`` if fw knows it and its library is installed, else raise a clear error."""
    if kind not in MODEL_KINDS:
        raise ParameterError(unknown_name_message("model", kind, MODEL_KINDS))
    module = _OPTIONAL.get(kind)
    if module is not None and importlib.util.find_spec(module) is None:
        raise ParameterError(
            f"model {kind!r} needs the {module} package, which is not installed; install the ml "
            f"extra (pip install 'fw[ml]') or choose one of logistic, random_forest, "
            f"gradient_boosting."
        )
    return kind


def available_kinds() -> tuple[str, ...]:
    """The model kinds whose libraries are importable here."""
    return tuple(
        k for k in MODEL_KINDS if _OPTIONAL.get(k) is None or importlib.util.find_spec(_OPTIONAL[k])
    )


def search_grid(kind: str) -> dict[str, list[Any]]:
    """The hyper-parameter grid searched for ``kind`` (a copy; safe to modify)."""
    return {name: list(values) for name, values in _GRIDS[check_kind(kind)].items()}


def default_hyperparameters(kind: str) -> dict[str, Any]:
    """The first value of each grid axis: what an unsearched fit uses."""
    return {name: values[0] for name, values in search_grid(kind).items()}


def make_estimator(kind: str, seed: int, hyperparameters: Mapping[str, Any] | None = None):
    """A fresh, unfitted, seeded binary classifier of ``kind``.

    Parameters
    ----------
    kind : str
        One of :data:`MODEL_KINDS`.
    seed : int
        Random state of the estimator (the same seed gives the same model).
    hyperparameters : mapping, optional
        Overrides of the defaults (names as in :func:`search_grid`).
    """
    check_kind(kind)
    hyper = {**default_hyperparameters(kind), **dict(hyperparameters or {})}
    if kind == "logistic":
        from framework.ml.rowwise import RowwiseLogisticRegression  # see its docstring

        return RowwiseLogisticRegression(max_iter=1000, random_state=seed, **hyper)
    if kind == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=1, **hyper)
    if kind == "gradient_boosting":
        from sklearn.ensemble import GradientBoostingClassifier

        return GradientBoostingClassifier(
            n_estimators=100, subsample=0.8, random_state=seed, **hyper
        )
    if kind == "lightgbm":
        from lightgbm import LGBMClassifier

        return LGBMClassifier(
            n_estimators=200, min_child_samples=30, subsample=0.8, subsample_freq=1,
            colsample_bytree=0.8, random_state=seed, n_jobs=1, verbose=-1, **hyper,
        )
    from xgboost import XGBClassifier

    return XGBClassifier(
        n_estimators=200, subsample=0.8, colsample_bytree=0.8, tree_method="hist",
        random_state=seed, n_jobs=1, verbosity=0, **hyper,
    )


def feature_importance(estimator: Any, n_features: int) -> list[float] | None:
    """Model-native importance per feature: |coefficient| on standardized inputs for linear
    models, impurity/gain importance for trees; averaged over calibrated copies; ``None`` when
    the estimator exposes neither."""
    copies = getattr(estimator, "calibrated_classifiers_", None)
    inner = [c.estimator for c in copies] if copies else [estimator]
    rows = []
    for est in inner:
        if hasattr(est, "coef_"):
            rows.append([abs(float(v)) for v in est.coef_.reshape(-1)[:n_features]])
        elif hasattr(est, "feature_importances_"):
            rows.append([float(v) for v in est.feature_importances_[:n_features]])
    if not rows:
        return None
    total = [sum(col) / len(rows) for col in zip(*rows, strict=True)]
    norm = sum(total)
    return [v / norm for v in total] if norm > 0 else total
