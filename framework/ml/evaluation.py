"""Out-of-sample evaluation of a learned strategy's models, fold by fold.

A walk-forward fold's model was fitted on bars before the fold's test window; here its
probabilities on the test window are scored against the labels those bars later resolved to
(the labels use bars after the window; that is measurement after the fact, never an input of
a decision). Strategies opt in by defining ``predictions(bars, p, model) -> (prob, outcome)``,
both ``(n_bars, n_assets)``: the model's probability of a positive label (``nan`` where it has
none) and the realised outcome (1, 0, or ``nan`` while unknown).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from framework.ml.training import classification_metrics
from framework.types import Bars

CALIBRATION_BINS = 10


@dataclass(frozen=True, eq=False)
class FoldModel:
    """What one fold used: its test rows ``[test_start, test_end)``, parameters and model."""

    number: int
    test_start: int
    test_end: int
    params: Any
    model: Any


@dataclass(frozen=True, eq=False)
class ModelEvaluation:
    """Per-fold out-of-sample scores, pooled calibration and feature importance.

    Attributes
    ----------
    folds : DataFrame
        One row per fold: ``fold``, ``test_start``, ``test_end`` (close times), ``n`` (scored
        predictions), ``accuracy``, ``auc``, ``log_loss``, ``brier``, ``base_rate`` (share of
        positive outcomes), ``cv_auc`` and ``cv_log_loss`` (the model's purged in-sample
        validation), ``is_auc`` (in-sample fit), ``traded`` (predictions past the threshold)
        and ``traded_hit_rate`` (their share of positive outcomes).
    overall : dict
        The same scores over every fold's predictions pooled.
    calibration : DataFrame
        ``bin_low``, ``bin_high``, ``mean_predicted``, ``observed``, ``count`` per probability bin.
    importance : DataFrame
        Feature importance (rows: folds, columns: features), where the model exposes it.
    model_kind : str
    """

    folds: pd.DataFrame
    overall: dict[str, float]
    calibration: pd.DataFrame
    importance: pd.DataFrame
    model_kind: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (overall scores and per-fold AUC) for ``summary.json``."""
        return {
            "model": self.model_kind,
            "overall": {k: _safe(v) for k, v in self.overall.items()},
            "fold_auc": [_safe(v) for v in self.folds["auc"]],
        }


def evaluate_folds(strategy: Any, bars: Bars, folds: Sequence[FoldModel]) -> ModelEvaluation:
    """Score each fold's model on its own test window (see the module docstring)."""
    rows, probs, outcomes, importance = [], [], [], {}
    for f in folds:
        prob, outcome = strategy.predictions(bars, f.params, f.model)
        p = np.asarray(prob, dtype=np.float64)[f.test_start:f.test_end].reshape(-1)
        o = np.asarray(outcome, dtype=np.float64)[f.test_start:f.test_end].reshape(-1)
        ok = np.isfinite(p) & np.isfinite(o)
        probs.append(p[ok])
        outcomes.append(o[ok])
        rows.append(_fold_row(bars, f, p[ok], o[ok]))
        if getattr(f.model, "importance", None):
            importance[f.number] = f.model.importance
    pooled_p = np.concatenate(probs) if probs else np.empty(0)
    pooled_o = np.concatenate(outcomes) if outcomes else np.empty(0)
    kind = getattr(folds[0].model, "kind", type(folds[0].model).__name__) if folds else ""
    return ModelEvaluation(
        folds=pd.DataFrame(rows),
        overall=classification_metrics(pooled_o.astype(int), pooled_p),
        calibration=calibration_table(pooled_p, pooled_o),
        importance=pd.DataFrame.from_dict(importance, orient="index"),
        model_kind=str(kind),
    )


def calibration_table(prob: np.ndarray, outcome: np.ndarray, bins: int = CALIBRATION_BINS) -> pd.DataFrame:
    """Observed frequency of positive outcomes per equal-width probability bin (empty bins kept,
    with ``nan`` means and a zero count)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(prob, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        hit = which == b
        n = int(hit.sum())
        rows.append({
            "bin_low": edges[b], "bin_high": edges[b + 1],
            "mean_predicted": float(prob[hit].mean()) if n else math.nan,
            "observed": float(outcome[hit].mean()) if n else math.nan,
            "count": n,
        })
    return pd.DataFrame(rows)


def _fold_row(bars: Bars, f: FoldModel, prob: np.ndarray, outcome: np.ndarray) -> dict[str, Any]:
    scores = classification_metrics(outcome.astype(int), prob)
    validation = getattr(f.model, "validation", {}).get("overall", {})
    in_sample = getattr(f.model, "in_sample", {}) or {}
    threshold = getattr(f.params, "threshold", 0.5)
    traded = prob >= threshold
    return {
        "fold": f.number,
        "test_start": bars.index[f.test_start],
        "test_end": bars.index[f.test_end - 1],
        **scores,
        "cv_auc": validation.get("auc", math.nan),
        "cv_log_loss": validation.get("log_loss", math.nan),
        "is_auc": in_sample.get("auc", math.nan),
        "traded": int(traded.sum()),
        "traded_hit_rate": float(outcome[traded].mean()) if traded.any() else math.nan,
    }


def _safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
