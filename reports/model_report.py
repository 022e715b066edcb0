"""The learned-model HTML report: how well each walk-forward fold's model predicted out of sample.

:func:`write_model_report` presents the :class:`framework.ml.evaluation.ModelEvaluation` of a
walk-forward run of a learned strategy (``wf.model_evaluation``): what was predicted, a
plain-language verdict, the per-fold scores, AUC per fold (out of sample, purged CV, in sample),
the pooled reliability diagram, feature importance and what the scores mean.

Reports never compute truth: every score comes from the evaluation. The only values derived
here are presentational: means over folds (of AUC, for the overfitting reading, and of feature
importance) and the constant-forecast baselines quoted in the notes. The verdict thresholds
below only choose words. Images are base64 PNG; the page references no external file.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import framework
from framework.errors import DataError
from reports.plots import img_tag, new_figure, quiet_plotting, spaced_ticks
from reports.walkforward import _CSS, _esc, _pct, _ratio, _table, _time_formatter

# Thresholds of the plain-language readings only (the numbers shown are the evaluation's):
COIN_FLIP_AUC = 0.02  # |AUC - 0.5| below this: no measurable ranking skill
WEAK_EDGE_AUC = 0.05  # below this: skill, but small enough for costs to erase
ACCURACY_MARGIN = 0.01  # accuracy within a point of the majority-class rate is no better
OVERFIT_CV_GAP = 0.05  # purged-CV AUC this far above out of sample: optimistic validation
OVERFIT_IS_GAP = 0.10  # in-sample fit is optimistic by construction: a wider gap before warning
TOP_CHART, TOP_TABLE = 20, 10
COIN_FLIP_LOG_LOSS = math.log(2.0)
COIN_FLIP_BRIER = 0.25

_HEADINGS = {
    "fold": "Fold", "test_start": "Test from", "test_end": "Test to", "n": "Scored",
    "accuracy": "Accuracy", "auc": "AUC (OOS)", "log_loss": "Log loss", "brier": "Brier",
    "base_rate": "Positive share", "cv_auc": "CV AUC", "cv_log_loss": "CV log loss",
    "is_auc": "In-sample AUC", "traded": "Traded", "traded_hit_rate": "Traded hit rate",
}
_PERCENT = {"accuracy", "base_rate", "traded_hit_rate"}


def write_model_report(wf: Any, path: str | Path) -> Path:
    """Write the learned-model report of walk-forward result ``wf`` to one HTML file.

    Parameters
    ----------
    wf : WalkForwardResult
        A walk-forward run of a learned strategy (its ``model_evaluation`` is set).
    path : str or Path
        Output HTML file; missing parent folders are created.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    DataError
        When ``wf`` has no model evaluation or the evaluation scored no fold.
    """
    evaluation = _evaluation(wf)
    strategy = str(getattr(getattr(wf, "backtest", None), "strategy", "unknown strategy"))
    with quiet_plotting():
        sections = [
            ("summary", "What was predicted", _header_section(wf, evaluation, strategy)),
            ("folds", "Out-of-sample scores per fold", _fold_table(evaluation)),
            ("auc", "AUC per fold", _auc_section(evaluation.folds)),
            ("calibration", "Calibration", _calibration_section(evaluation.calibration)),
            ("importance", "Feature importance", _importance_section(evaluation.importance)),
            ("notes", "What the numbers mean", _notes_section(evaluation.overall)),
        ]
    title = f"Model report: {strategy} ({evaluation.model_kind})"
    body = "".join(f'<section id="{key}"><h2>{html.escape(heading)}</h2>{content}</section>\n'
                   for key, heading, content in sections)
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>{body}"
        f'<p class="muted">fw {html.escape(framework.__version__)}</p>\n</body></html>\n'
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def _evaluation(wf: Any) -> Any:
    evaluation = getattr(wf, "model_evaluation", None)
    if evaluation is None:
        raise DataError(
            f"write_model_report needs a walk-forward result with a model evaluation; "
            f"{type(wf).__name__}.model_evaluation is None. Only learned strategies that define "
            "predictions(bars, p, model) are scored; run one with --walk-forward "
            "(e.g. fw backtest ml_classifier --walk-forward)."
        )
    if len(evaluation.folds) == 0:
        raise DataError(
            "the model evaluation has no folds; nothing to report. Run the walk-forward on data "
            "long enough for at least one train + test window."
        )
    return evaluation


# -- readings ------------------------------------------------------------------------------------
def _finite(value: Any) -> bool:
    return value is not None and isinstance(value, int | float | np.number) and math.isfinite(value)


def auc_reading(auc: float) -> str:
    """Plain-language reading of an out-of-sample ROC AUC (0.5 = a coin flip)."""
    if not _finite(auc):
        return ("out-of-sample AUC n/a: the scored outcomes had a single class, so ranking "
                "skill cannot be measured.")
    gap, text = auc - 0.5, f"out-of-sample AUC {auc:.3f}: "
    if abs(gap) < COIN_FLIP_AUC:
        return text + "indistinguishable from a coin flip."
    if gap < 0:
        return text + ("below a coin flip: the model ranks outcomes backwards, no edge as "
                       "traded (often a regime change between training and test windows).")
    if gap < WEAK_EDGE_AUC:
        return text + "weak edge: better than chance, by little enough for costs to erase it."
    return text + "edge: it ranks positive outcomes above negative ones clearly more often than chance."


def accuracy_reading(accuracy: float, base_rate: float) -> str:
    """Accuracy against always predicting the more common outcome (the honest baseline)."""
    if not (_finite(accuracy) and _finite(base_rate)):
        return "accuracy n/a: no scored predictions."
    majority = max(base_rate, 1.0 - base_rate)
    text = (f"accuracy {accuracy:.1%} vs {majority:.1%} from always predicting the more common "
            f"outcome (positive share {base_rate:.1%}): ")
    if accuracy > majority + ACCURACY_MARGIN:
        return text + "better than that baseline."
    if accuracy >= majority - ACCURACY_MARGIN:
        return text + "no better than that baseline."
    return text + "worse than that baseline."


def _mean(values: pd.Series) -> float:
    finite = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(finite.mean()) if finite.size else math.nan


def overfitting_readings(folds: pd.DataFrame) -> list[str]:
    """Warnings when the purged-CV or in-sample AUC (mean over folds) is well above the
    out-of-sample AUC (mean over folds); empty when neither is."""
    oos = _mean(folds["auc"]) if "auc" in folds else math.nan
    if not _finite(oos):
        return []
    found = []
    for column, gap, what in (
        ("cv_auc", OVERFIT_CV_GAP, "purged cross-validation inside each training window was "
         "optimistic: its scores overstate what the model does on new data"),
        ("is_auc", OVERFIT_IS_GAP, "the models fit their training rows far better than new "
         "ones (memorising noise)"),
    ):
        other = _mean(folds[column]) if column in folds else math.nan
        if _finite(other) and other - oos > gap:
            label = _HEADINGS[column]
            found.append(f"Overfitting: {label} averages {other:.3f} over folds against "
                         f"{oos:.3f} out of sample; {what}.")
    return found


# -- header ----------------------------------------------------------------------------------------
def _predicted(params: Any) -> str:
    label, horizon = getattr(params, "label", None), getattr(params, "horizon", None)
    if label is None and horizon is None:
        return "n/a (the first fold's parameters name no label or horizon)"
    text = f"label {label if label is not None else 'n/a'}"
    text += f", {horizon} bars ahead" if horizon is not None else ""
    if getattr(params, "meta_label", False):
        text += " (meta-label: whether the 20-bar momentum side is right)"
    return text


def _header_section(wf: Any, evaluation: Any, strategy: str) -> str:
    folds, overall = evaluation.folds, evaluation.overall
    schedule = getattr(wf, "schedule", ()) or ()
    first = schedule[0] if schedule else None
    params = getattr(first, "params", None)
    threshold = getattr(params, "threshold", None)
    rows = [["Strategy", _esc(strategy)], ["Model", _esc(evaluation.model_kind)],
            ["Folds", _esc(len(folds))], ["Predicted (first fold)", _esc(_predicted(params))]]
    if threshold is not None:
        rows.append(["Probability needed to trade (first fold)", _esc(threshold)])
    if {"test_start", "test_end"} <= set(folds.columns):
        fmt = _time_formatter([folds["test_start"].iloc[0], folds["test_end"].iloc[-1]])
        span = f"{fmt(folds['test_start'].iloc[0])} to {fmt(folds['test_end'].iloc[-1])}"
        rows.append(["Out-of-sample span", _esc(span)])
    describe = getattr(getattr(first, "model", None), "describe", None)
    if callable(describe):
        card = describe()
        rows.append(["First fold's model", _esc(
            f"{card.get('n_samples', 'n/a')} training rows; hyperparameters "
            f"{card.get('hyperparameters') or 'defaults'}")])
    for key, label, fmt in (("n", "Scored predictions (pooled)", _esc), ("auc", "AUC", _auc),
                            ("accuracy", "Accuracy", _pct), ("base_rate", "Positive share", _pct),
                            ("log_loss", "Log loss", _auc), ("brier", "Brier score", _auc)):
        if key in overall:
            rows.append([label, fmt(overall[key])])
    readings = [auc_reading(overall.get("auc", math.nan)),
                accuracy_reading(overall.get("accuracy", math.nan), overall.get("base_rate", math.nan))]
    verdict = "".join(f'<p class="reading">{_esc(r[0].upper() + r[1:])}</p>' for r in readings)
    warnings = "".join(f'<div class="warn" id="overfitting-{k}">{_esc(w)}</div>'
                       for k, w in enumerate(overfitting_readings(folds)))
    return (f'<div class="info" id="verdict"><strong>Verdict (pooled out of sample)</strong>'
            f"{verdict}</div>{warnings}" + _table(["", "Value"], rows, table_id="run-table"))


# -- fold table --------------------------------------------------------------------------------
def _auc(value: Any) -> str:
    return _ratio(value, 3)


def _cell(column: str, value: Any, fmt: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, pd.Timestamp):
        return _esc(fmt(value))
    if column in _PERCENT:
        return _pct(value)
    if isinstance(value, int | np.integer):
        return _esc(int(value))
    if isinstance(value, float | np.floating):
        return _auc(value)
    return _esc(value)


def _fold_table(evaluation: Any) -> str:
    folds, overall = evaluation.folds, evaluation.overall
    columns = list(folds.columns)
    times = [v for c in columns for v in folds[c] if isinstance(v, pd.Timestamp)]
    fmt = _time_formatter(times) if times else str
    # Column by column, so an all-numeric frame keeps its integer columns (iterrows upcasts).
    rows = [[_cell(c, folds[c].iloc[i], fmt) for c in columns] for i in range(len(folds))]
    pooled = [_cell(c, overall[c], fmt) if c in overall else "" for c in columns]
    rows.append(["all (pooled)" if c == "fold" else v for c, v in zip(columns, pooled, strict=True)])
    caption = ('<p class="muted">Each fold\'s model, fitted before its test window, scored on '
               "that window; test dates are the first and last bar close times. CV = purged "
               "cross-validation inside the training window; in-sample = the training rows "
               "themselves. Traded = predictions at or past the threshold; their hit rate is "
               "the share that turned out positive. The last row pools every fold's "
               "predictions.</p>")
    header = [_esc(_HEADINGS.get(c, c)) for c in columns]
    return caption + _table(header, rows, left=1, table_id="model-fold-table")


# -- charts --------------------------------------------------------------------------------------
def _auc_section(folds: pd.DataFrame) -> str:
    if "auc" not in folds or "fold" not in folds:
        return '<p class="muted">The evaluation has no per-fold AUC.</p>'
    x = folds["fold"].to_numpy()
    fig = new_figure(11, 3.6)
    ax = fig.add_subplot()
    for column, label, style in (("is_auc", "in sample", dict(color="#9ecae1", marker="s")),
                                 ("cv_auc", "purged CV", dict(color="#ff7f0e", marker="^")),
                                 ("auc", "out of sample", dict(color="#1f77b4", marker="o"))):
        if column in folds:
            ax.plot(x, pd.to_numeric(folds[column]).to_numpy(dtype=float), label=label, **style)
    ax.axhline(0.5, color="#444444", linewidth=0.9, linestyle="--", label="coin flip (0.5)")
    ticks = spaced_ticks(len(x), 15)
    ax.set_xticks(x[ticks], [str(v) for v in x[ticks]])
    ax.set_xlabel("fold")
    ax.set_ylabel("ROC AUC")
    ax.set_title("AUC per fold: a gap above the out-of-sample line is optimism, not skill")
    ax.legend(loc="best")
    return img_tag(fig, "AUC per fold: out of sample vs purged CV vs in sample")


def _calibration_section(calibration: pd.DataFrame) -> str:
    needed = {"bin_low", "bin_high", "mean_predicted", "observed", "count"}
    if calibration.empty or not needed <= set(calibration.columns) or calibration["count"].sum() == 0:
        return '<p class="muted">No scored predictions to calibrate.</p>'
    cal = calibration
    seen = cal[cal["count"] > 0]
    fig = new_figure(6.5, 5.6)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], color="#888888", linestyle="--", linewidth=0.9, label="perfect calibration")
    top.plot(seen["mean_predicted"], seen["observed"], marker="o", color="#1f77b4", label="model")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("observed positive share")
    top.set_title("Reliability: mean predicted vs observed per probability bin")
    top.legend(loc="upper left")
    centres = (cal["bin_low"] + cal["bin_high"]).to_numpy(dtype=float) / 2
    widths = (cal["bin_high"] - cal["bin_low"]).to_numpy(dtype=float) * 0.9
    bottom.bar(centres, cal["count"].to_numpy(dtype=float), width=widths, color="#9ecae1")
    bottom.set_xlabel("predicted probability of a positive label")
    bottom.set_ylabel("predictions")
    rows = [[_esc(f"{r['bin_low']:.1f} to {r['bin_high']:.1f}"), _esc(int(r["count"])),
             _auc(r["mean_predicted"]), _auc(r["observed"])] for _, r in cal.iterrows()]
    caption = ('<p class="muted">All folds\' out-of-sample predictions pooled. Points on the '
               "diagonal mean a predicted 60% came true 60% of the time; bins with few "
               "predictions (bottom panel) are noisy.</p>")
    return (caption + img_tag(fig, "calibration reliability diagram") + _table(
        ["Bin", "Predictions", "Mean predicted", "Observed"], rows, table_id="calibration-table"))


def mean_importance(importance: pd.DataFrame) -> pd.Series:
    """Importance per feature averaged over the folds that report it, largest first."""
    if importance.empty:
        return pd.Series(dtype=np.float64)
    means = importance.apply(pd.to_numeric, errors="coerce").mean(axis=0, skipna=True)
    return means.dropna().sort_values(ascending=False, kind="stable")


def _importance_section(importance: pd.DataFrame) -> str:
    means = mean_importance(importance)
    if means.empty:
        return ('<p class="muted">This model kind exposes no feature importance (neither '
                "coefficients nor tree importances), so none is shown.</p>")
    top = means.iloc[:TOP_CHART][::-1]
    fig = new_figure(8, 1.0 + 0.28 * len(top))
    ax = fig.add_subplot()
    ax.barh([str(n) for n in top.index], top.to_numpy(dtype=float), color="#1f77b4")
    ax.set_xlabel("mean importance over folds (share of the model's total)")
    ax.set_title(f"Top {len(top)} of {len(means)} features")
    names = list(means.index[:TOP_TABLE])
    rows = [[_esc(fold)] + [_auc(r[n]) for n in names] for fold, r in importance[names].iterrows()]
    rows.append(["mean"] + [_auc(means[n]) for n in names])
    caption = ('<p class="muted">Model-native importance: |coefficient| on standardized inputs '
               "for linear models, impurity or gain importance for trees, normalized to sum to 1 "
               "per fold. It says what the model leaned on, not that the feature predicts; a "
               "ranking that changes from fold to fold is another sign of fitting noise.</p>")
    return (caption + img_tag(fig, "mean feature importance over folds")
            + _table(["Fold"] + [_esc(n) for n in names], rows, table_id="importance-table"))


# -- notes -----------------------------------------------------------------------------------------
def _notes_section(overall: dict) -> str:
    base = overall.get("base_rate", math.nan)
    constant = ""
    if _finite(base) and 0.0 < base < 1.0:  # presentational: the constant-forecast baseline
        entropy = -(base * math.log(base) + (1 - base) * math.log(1 - base))
        constant = (f" A constant forecast of this run's positive share ({base:.1%}) would score "
                    f"log loss {entropy:.3f} and Brier {base * (1 - base):.3f}: the bar a model "
                    "must clear to add information.")
    items = [
        "AUC (ROC area): the chance that a randomly chosen positive outcome got a higher "
        "probability than a randomly chosen negative one. 0.5 is a coin flip, 1.0 perfect "
        "ranking; it ignores whether probabilities are well scaled.",
        f"Log loss: the average penalty for the probability given to what happened; lower is "
        f"better. Always answering 50% scores ln 2 = {COIN_FLIP_LOG_LOSS:.3f}.",
        f"Brier score: the mean squared gap between probability and outcome (0 or 1); lower is "
        f"better. Always answering 50% scores {COIN_FLIP_BRIER:.2f}." + constant,
        "Accuracy counts probabilities at or past 0.5 as a call for a positive outcome; compare "
        "it with the more common outcome's share, not with 50%.",
        "Out-of-sample scores are the honest ones: each fold's model never saw its test window. "
        "Purged CV and in-sample scores come from the training window and are shown to expose "
        "the gap.",
    ]
    return "<ul>" + "".join(f"<li>{_esc(t)}</li>" for t in items) + "</ul>"
