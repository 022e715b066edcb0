"""reports.model_report: one self-contained HTML page on a walk-forward run's learned models,
built here from a hand-made ModelEvaluation (realistic small frames) and a stand-in result
carrying only the attributes the report reads."""

from __future__ import annotations

import base64
import math
import re
import socket
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from framework.errors import DataError
from framework.ml.evaluation import ModelEvaluation, calibration_table
from reports.model_report import (
    COIN_FLIP_AUC,
    WEAK_EDGE_AUC,
    accuracy_reading,
    auc_reading,
    mean_importance,
    overfitting_readings,
    write_model_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FEATURES = [f"feature_{k:02d}" for k in range(25)]


def _folds(auc: list[float], cv_auc: list[float], is_auc: list[float]) -> pd.DataFrame:
    n = len(auc)
    starts = pd.date_range("2021-01-04 21:00", periods=n, freq="90D", tz="UTC")
    return pd.DataFrame({
        "fold": np.arange(n, dtype=np.int64),
        "test_start": starts,
        "test_end": starts + pd.Timedelta(days=89),
        "n": np.full(n, 61, dtype=np.int64),
        "accuracy": np.linspace(0.50, 0.54, n),
        "auc": auc,
        "log_loss": np.linspace(0.690, 0.697, n),
        "brier": np.linspace(0.248, 0.252, n),
        "base_rate": np.linspace(0.51, 0.55, n),
        "cv_auc": cv_auc,
        "cv_log_loss": np.linspace(0.680, 0.688, n),
        "is_auc": is_auc,
        "traded": np.array([12, 0, 7, 20][:n], dtype=np.int64),
        "traded_hit_rate": [0.5833, math.nan, 0.5714, 0.55][:n],
    })


def _evaluation(overall_auc: float, auc: list[float], cv_auc: list[float], is_auc: list[float],
                importance: pd.DataFrame | None = None, accuracy: float = 0.53) -> ModelEvaluation:
    rng = np.random.default_rng(7)
    prob = np.clip(rng.normal(0.53, 0.06, 244), 0.01, 0.99)
    outcome = (rng.random(244) < prob).astype(float)
    if importance is None:
        raw = rng.random((len(auc), len(FEATURES)))
        importance = pd.DataFrame(raw / raw.sum(axis=1, keepdims=True),
                                  index=range(len(auc)), columns=FEATURES)
    return ModelEvaluation(
        folds=_folds(auc, cv_auc, is_auc),
        overall={"n": 244, "accuracy": accuracy, "auc": overall_auc, "log_loss": 0.6925,
                 "brier": 0.2496, "base_rate": 0.53},
        calibration=calibration_table(prob, outcome),
        importance=importance,
        model_kind="logistic",
    )


def _wf(evaluation, strategy: str = "ml_classifier", params=None, model=None):
    params = params if params is not None else SimpleNamespace(
        label="triple_barrier", horizon=10, meta_label=False, threshold=0.55)
    entry = SimpleNamespace(effective_from=pd.Timestamp("2021-01-04 21:00", tz="UTC"),
                            params=params, model=model)
    return SimpleNamespace(backtest=SimpleNamespace(strategy=strategy, summary={}),
                           schedule=(entry,), model_evaluation=evaluation)


COIN_FLIP = dict(overall_auc=0.51, auc=[0.50, 0.52, 0.49, 0.53], cv_auc=[0.52, 0.53, 0.51, 0.52],
                 is_auc=[0.56, 0.57, 0.55, 0.58])
EDGE = dict(overall_auc=0.58, auc=[0.57, 0.60, 0.56, 0.59], cv_auc=[0.58, 0.59, 0.57, 0.60],
            is_auc=[0.62, 0.63, 0.61, 0.64])
OVERFIT = dict(overall_auc=0.51, auc=[0.50, 0.52, 0.49, 0.53], cv_auc=[0.68, 0.71, 0.70, 0.69],
               is_auc=[0.93, 0.95, 0.94, 0.96])


class _Links(HTMLParser):
    """Collects every src/href value and the text of each table cell row by table id."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.links += [attrs[k] for k in ("src", "href") if attrs.get(k)]
        if tag == "table":
            self._table = attrs.get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._table is not None and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None


def _parse(page: str) -> _Links:
    parser = _Links()
    parser.feed(page)
    return parser


def _write(tmp_path: Path, case: dict, **kwargs) -> str:
    path = write_model_report(_wf(_evaluation(**case), **kwargs), tmp_path / "nested" / "model.html")
    assert path == tmp_path / "nested" / "model.html"
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def coin_page(tmp_path_factory) -> str:
    return _write(tmp_path_factory.mktemp("coin"), COIN_FLIP)


def test_page_is_self_contained_with_embedded_png_images(coin_page):
    parsed = _parse(coin_page)
    assert not [link for link in parsed.links if re.match(r"\s*(https?:)?//", link)]
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', coin_page)
    assert len(images) == 3  # AUC per fold, calibration, importance
    assert all(base64.b64decode(data).startswith(PNG_MAGIC) for data in images)
    for key in ("summary", "folds", "auc", "calibration", "importance", "notes"):
        assert f'<section id="{key}">' in coin_page


def test_fold_table_has_every_column_and_fold_formatted(coin_page):
    rows = _parse(coin_page).tables["model-fold-table"]
    header, body = rows[0], rows[1:]
    assert header[:4] == ["Fold", "Test from", "Test to", "Scored"]
    assert len(header) == 14  # every column of the evaluation's folds
    assert [r[0] for r in body] == ["0", "1", "2", "3", "all (pooled)"]
    first = dict(zip(header, body[0], strict=True))
    assert first["Test from"] == "2021-01-04" and first["Test to"] == "2021-04-03"
    assert first["AUC (OOS)"] == "0.500" and first["CV AUC"] == "0.520"
    assert first["Accuracy"] == "50.0%" and first["Traded"] == "12"
    assert dict(zip(header, body[1], strict=True))["Traded hit rate"] == "n/a"
    pooled = dict(zip(header, body[-1], strict=True))
    assert pooled["AUC (OOS)"] == "0.510" and pooled["Scored"] == "244" and pooled["CV AUC"] == ""


def test_header_names_strategy_model_folds_and_what_was_predicted(coin_page):
    rows = dict((r[0], r[1]) for r in _parse(coin_page).tables["run-table"][1:])
    assert rows["Strategy"] == "ml_classifier"
    assert rows["Model"] == "logistic"
    assert rows["Folds"] == "4"
    assert rows["Predicted (first fold)"] == "label triple_barrier, 10 bars ahead"
    assert rows["Probability needed to trade (first fold)"] == "0.55"


def test_coin_flip_verdict_and_no_overfitting_warning(coin_page):
    assert "Out-of-sample AUC 0.510: indistinguishable from a coin flip." in coin_page
    assert "vs 53.0% from always predicting the more common outcome" in coin_page
    assert "no better than that baseline" in coin_page
    assert 'id="overfitting-' not in coin_page


def test_edge_verdict(tmp_path):
    page = write_model_report(_wf(_evaluation(**EDGE, accuracy=0.58)), tmp_path / "m.html").read_text()
    assert "Out-of-sample AUC 0.580: edge" in page
    assert "coin flip." not in page.split('id="verdict"')[1].split("</div>")[0]
    assert "better than that baseline" in page
    assert 'id="overfitting-' not in page


def test_overfitting_warning_when_cv_and_in_sample_auc_far_above_out_of_sample(tmp_path):
    page = _write(tmp_path, OVERFIT)
    warnings = re.findall(r'<div class="warn" id="overfitting-\d">(.*?)</div>', page)
    assert len(warnings) == 2
    assert "CV AUC averages 0.695" in warnings[0] and "0.510 out of sample" in warnings[0]
    assert "In-sample AUC averages 0.945" in warnings[1]


def test_empty_importance_is_explained_not_drawn(tmp_path):
    case = dict(COIN_FLIP, importance=pd.DataFrame())
    page = _write(tmp_path, case)
    assert "exposes no feature importance" in page
    assert len(re.findall(r"data:image/png;base64,", page)) == 2
    assert "importance-table" not in page


def test_importance_table_shows_top_ten_by_mean_over_folds(coin_page):
    rows = _parse(coin_page).tables["importance-table"]
    evaluation = _evaluation(**COIN_FLIP)
    expected = evaluation.importance.mean().sort_values(ascending=False).index[:10].tolist()
    assert rows[0] == ["Fold"] + expected
    assert [r[0] for r in rows[1:]] == ["0", "1", "2", "3", "mean"]


def test_missing_model_evaluation_raises_data_error(tmp_path):
    with pytest.raises(DataError, match="model_evaluation is None"):
        write_model_report(_wf(None), tmp_path / "m.html")
    assert not (tmp_path / "m.html").exists()


def test_evaluation_without_folds_raises_data_error(tmp_path):
    empty = ModelEvaluation(folds=pd.DataFrame(), overall={}, calibration=pd.DataFrame(),
                            importance=pd.DataFrame(), model_kind="logistic")
    with pytest.raises(DataError, match="no folds"):
        write_model_report(_wf(empty), tmp_path / "m.html")


def test_defensive_params_escaping_model_card_and_no_network(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network used")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    card = SimpleNamespace(describe=lambda: {"n_samples": 480, "hyperparameters": {"C": 0.1}})
    evaluation = _evaluation(**COIN_FLIP)
    evaluation.calibration["count"] = 0  # nothing to calibrate
    wf = _wf(evaluation, strategy="<script>x</script>", params=SimpleNamespace(), model=card)
    page = write_model_report(wf, tmp_path / "m.html").read_text()
    assert "<script>x</script>" not in page and "&lt;script&gt;" in page
    assert "n/a (the first fold&#x27;s parameters name no label or horizon)" in page
    assert "480 training rows; hyperparameters {&#x27;C&#x27;: 0.1}" in page
    assert "No scored predictions to calibrate." in page


def test_single_class_fold_auc_nan_is_shown_as_na(tmp_path):
    case = dict(COIN_FLIP, overall_auc=math.nan, auc=[math.nan, 0.52, 0.49, 0.53])
    page = _write(tmp_path, case)
    assert "Out-of-sample AUC n/a" in page
    first = _parse(page).tables["model-fold-table"][1]
    assert first[5] == "n/a"


@given(st.floats(0.0, 1.0))
def test_auc_reading_follows_the_thresholds(auc):
    text = auc_reading(auc)
    gap = auc - 0.5
    assert ("coin flip." in text and "below" not in text) == (abs(gap) < COIN_FLIP_AUC)
    assert ("weak edge" in text) == (COIN_FLIP_AUC <= gap < WEAK_EDGE_AUC)
    assert text.split(": ")[1].startswith("edge") == (gap >= WEAK_EDGE_AUC)
    assert ("below a coin flip" in text) == (gap <= -COIN_FLIP_AUC)


@given(st.floats(0.0, 1.0), st.floats(0.01, 0.99))
def test_accuracy_reading_compares_with_the_majority_class(accuracy, base_rate):
    text = accuracy_reading(accuracy, base_rate)
    majority = max(base_rate, 1 - base_rate)
    assert text.endswith(": better than that baseline.") == (accuracy > majority + 0.01)
    assert text.endswith("no better than that baseline.") == (
        majority - 0.01 <= accuracy <= majority + 0.01)
    assert text.endswith("worse than that baseline.") == (accuracy < majority - 0.01)
    assert f"vs {majority:.1%} from always predicting the more common outcome" in text


def test_overfitting_readings_ignore_missing_columns_and_nan():
    folds = pd.DataFrame({"auc": [0.5, math.nan], "cv_auc": [math.nan, math.nan]})
    assert overfitting_readings(folds) == []
    assert overfitting_readings(pd.DataFrame({"auc": [0.5], "is_auc": [0.7]}))[0].startswith(
        "Overfitting: In-sample AUC averages 0.700")


def test_mean_importance_skips_folds_without_a_feature():
    frame = pd.DataFrame({"a": [0.2, math.nan], "b": [0.8, 0.6]}, index=[0, 1])
    means = mean_importance(frame)
    assert means.index.tolist() == ["b", "a"]
    assert means["a"] == pytest.approx(0.2) and means["b"] == pytest.approx(0.7)
    assert mean_importance(pd.DataFrame()).empty
