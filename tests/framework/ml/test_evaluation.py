"""Fold-by-fold model evaluation against a fake strategy with known predictions."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from framework.ml.evaluation import (
    CALIBRATION_BINS,
    FoldModel,
    calibration_table,
    evaluate_folds,
)
from framework.ml.training import classification_metrics
from tests.barsgen import make_bars

N_BARS, N_ASSETS = 60, 2


@dataclass(frozen=True)
class FakeParams:
    threshold: float = 0.6


@dataclass
class FakeModel:
    kind: str = "fake"
    validation: dict = field(default_factory=lambda: {"overall": {"auc": 0.61, "log_loss": 0.68}})
    in_sample: dict = field(default_factory=lambda: {"auc": 0.7})
    importance: dict | None = None


class FakeStrategy:
    """``predictions`` returns fixed arrays and records who asked."""

    def __init__(self, prob: np.ndarray, outcome: np.ndarray) -> None:
        self.prob, self.outcome, self.calls = prob, outcome, []

    def predictions(self, bars, p, model):
        self.calls.append((p, model))
        return self.prob, self.outcome


def _known_arrays(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    prob = rng.uniform(0.0, 1.0, (N_BARS, N_ASSETS))
    outcome = (rng.random((N_BARS, N_ASSETS)) < prob).astype(np.float64)
    prob[:5] = np.nan  # model warm-up
    prob[22, 1] = np.nan
    outcome[-4:] = np.nan  # labels not resolved yet
    outcome[30, 0] = np.nan
    return prob, outcome


def _folds() -> list[FoldModel]:
    return [
        FoldModel(0, 0, 20, FakeParams(0.6), FakeModel(importance={"x": 0.75, "y": 0.25})),
        FoldModel(1, 20, 40, FakeParams(0.55), FakeModel(importance={"x": 0.5, "y": 0.5})),
        FoldModel(2, 40, 60, FakeParams(0.7), FakeModel()),
    ]


def _fold_slice(prob, outcome, f):
    p = prob[f.test_start:f.test_end].reshape(-1)
    o = outcome[f.test_start:f.test_end].reshape(-1)
    ok = np.isfinite(p) & np.isfinite(o)
    return p[ok], o[ok]


@pytest.fixture(scope="module")
def evaluated():
    bars = make_bars(n=N_BARS, m=N_ASSETS, seed=1)
    prob, outcome = _known_arrays()
    strategy = FakeStrategy(prob, outcome)
    folds = _folds()
    return bars, prob, outcome, strategy, folds, evaluate_folds(strategy, bars, folds)


def test_each_fold_is_scored_on_its_own_test_slice(evaluated):
    bars, prob, outcome, strategy, folds, ev = evaluated
    assert list(ev.folds["fold"]) == [0, 1, 2]
    # every fold's own params and model were asked for predictions
    assert [(p, m) for p, m in strategy.calls] == [(f.params, f.model) for f in folds]
    for row, f in zip(ev.folds.to_dict("records"), folds, strict=True):
        p, o = _fold_slice(prob, outcome, f)
        expected = classification_metrics(o.astype(int), p)
        for key, value in expected.items():
            assert row[key] == pytest.approx(value, nan_ok=True), (f.number, key)
        assert row["test_start"] == bars.index[f.test_start]
        assert row["test_end"] == bars.index[f.test_end - 1]
        assert row["cv_auc"] == 0.61 and row["cv_log_loss"] == 0.68 and row["is_auc"] == 0.7
        traded = p >= f.params.threshold
        assert row["traded"] == int(traded.sum())
        assert row["traded_hit_rate"] == pytest.approx(o[traded].mean())


def test_fold_rows_skip_unknown_predictions_and_outcomes(evaluated):
    _, _, _, _, _, ev = evaluated
    # fold 0: 40 cells, 10 in warm-up; fold 1: minus one NaN prob (bar 22) and one unknown
    # outcome (bar 30); fold 2: minus 4 bars x 2 assets unresolved
    assert list(ev.folds["n"]) == [30, 38, 32]


def test_overall_pools_every_fold(evaluated):
    _, prob, outcome, _, folds, ev = evaluated
    pooled = [_fold_slice(prob, outcome, f) for f in folds]
    p = np.concatenate([x for x, _ in pooled])
    o = np.concatenate([y for _, y in pooled])
    assert ev.overall == pytest.approx(classification_metrics(o.astype(int), p))
    assert ev.overall["n"] == ev.folds["n"].sum()
    assert ev.model_kind == "fake"


def test_calibration_counts_sum_to_the_pooled_predictions(evaluated):
    _, _, _, _, _, ev = evaluated
    table = ev.calibration
    assert len(table) == CALIBRATION_BINS
    assert table["count"].sum() == ev.overall["n"]
    filled = table[table["count"] > 0]
    assert (filled["mean_predicted"] >= filled["bin_low"]).all()
    assert (filled["mean_predicted"] <= filled["bin_high"]).all()
    assert ((filled["observed"] >= 0) & (filled["observed"] <= 1)).all()


def test_importance_has_a_row_per_fold_that_reports_it(evaluated):
    _, _, _, _, _, ev = evaluated
    assert list(ev.importance.index) == [0, 1]
    assert ev.importance.loc[0, "x"] == 0.75 and ev.importance.loc[1, "y"] == 0.5


def test_to_dict_is_json_safe_even_with_undefined_scores():
    bars = make_bars(n=N_BARS, m=N_ASSETS, seed=1)
    prob, outcome = _known_arrays()
    outcome[40:56] = 1.0  # fold 2 sees only positive outcomes: its AUC is undefined
    ev = evaluate_folds(FakeStrategy(prob, outcome), bars, _folds())
    assert math.isnan(ev.folds["auc"].iloc[2])
    summary = ev.to_dict()
    text = json.dumps(summary, allow_nan=False)
    assert json.loads(text)["fold_auc"][2] is None
    assert summary["model"] == "fake"
    assert summary["overall"]["n"] == ev.overall["n"]
    assert summary["fold_auc"][:2] == pytest.approx(list(ev.folds["auc"].iloc[:2]))


def test_calibration_table_by_hand():
    prob = np.array([0.05, 0.15, 0.12, 0.95, 1.0, 0.0, 0.5])
    outcome = np.array([0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    table = calibration_table(prob, outcome, bins=4)
    assert isinstance(table, pd.DataFrame)
    np.testing.assert_allclose(table["bin_low"], [0.0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(table["bin_high"], [0.25, 0.5, 0.75, 1.0])
    # 1.0 falls in the last bin, 0.5 in the third (bins are closed on the left)
    assert list(table["count"]) == [4, 0, 1, 2]
    assert table["mean_predicted"].iloc[0] == pytest.approx(0.08)
    assert table["observed"].iloc[0] == pytest.approx(0.25)
    assert math.isnan(table["mean_predicted"].iloc[1]) and math.isnan(table["observed"].iloc[1])
    assert table["mean_predicted"].iloc[3] == pytest.approx(0.975)


def test_calibration_table_of_nothing_has_empty_bins():
    table = calibration_table(np.empty(0), np.empty(0))
    assert len(table) == CALIBRATION_BINS and table["count"].sum() == 0
