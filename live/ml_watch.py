"""Watching a learned strategy's models while it paper-trades: shadow predictions, drift, A/B.

At every bar the :class:`ModelWatch` stores the probability of the traded ("live") model and of
each challenger ("shadow": it predicts, nothing trades on it) in the store's ``predictions``
table, and adds the live probability to the decision's recorded features (the trade journal
shows it). Every ``check_every`` bars it compares the last ``window`` bars of features with the
live model's training distribution (population stability index, the baseline saved in the
registry card) and the live model's recent hit rate with the outcomes the bars have since
resolved (:mod:`framework.ml.drift`); a new alert is sent once, and stored as an event.

:func:`compare_versions` (``fw ml compare``) scores two versions' stored predictions of a run:
hit rate against the realised outcomes and the P&L each would have made if traded (positions
from the run's sizing parameters, held from the next open to the open after, before costs).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from framework.errors import DataError
from framework.types import Bars

PROBABILITY_FEATURE = "model_probability"  # the journal shows features named like a prediction


@dataclass(frozen=True)
class WatchSpec:
    """How often and over how many bars drift is checked (thresholds: ``DriftSpec``)."""

    check_every: int = 5
    window: int = 252
    drift: Any = None  # framework.ml.drift.DriftSpec; None: its defaults


@dataclass
class ModelWatch:
    """Shadow predictions and drift checks of one paper run (see the module docstring).

    Parameters
    ----------
    strategy : Strategy
        A learned strategy with ``probabilities(features, model)`` and ``predictions``.
    store : Store
    run_id : str
    live_version : str
        Registry version of the traded model.
    challengers : mapping
        ``version -> model`` predicted in shadow.
    baseline : FeatureBaseline, optional
        Training distribution of the live model's features.
    alert : callable
        ``alert(kind, title, body, level)``.
    """

    strategy: Any
    store: Any
    run_id: str
    live_version: str
    challengers: Mapping[str, Any] = field(default_factory=dict)
    baseline: Any = None
    alert: Callable[..., None] = lambda *args: None
    spec: WatchSpec = field(default_factory=WatchSpec)
    since: pd.Timestamp | None = None  # first traded bar: earlier bars are warm-up/training
    registry: Any = None
    retraining: Any = None  # live.ml_retrain.RetrainSpec; None: never
    _seen: int = 0
    _raised: frozenset = frozenset()

    def before_bar(self, runner, when: pd.Timestamp) -> None:
        """Runner hook before a bar is decided: scheduled retraining (``live.ml_retrain``)."""
        if self.retraining is not None and self.retraining.enabled:
            from live.ml_retrain import before_bar

            before_bar(self, runner, when)

    def switch(self, card) -> None:
        """A retrained model trades from now on: label its predictions, judge drift against it."""
        from framework.ml.drift import FeatureBaseline

        self.live_version = card.version
        self.baseline = FeatureBaseline.from_dict(card.baseline) if card.baseline else None
        self._raised = frozenset()

    def observe(self, history: Bars, features: Mapping[str, np.ndarray], entry) -> dict[str, Any]:
        """Store this bar's predictions; return the live probability per symbol (a feature)."""
        when = history.index[-1].isoformat()
        if self.since is None:
            self.since = history.index[-1]
        live = self._last_row(features, entry.model)
        rows = [{"symbol": s, "model_version": self.live_version, "role": "live",
                 "probability": _finite(live[j])} for j, s in enumerate(history.symbols)]
        for version, model in self.challengers.items():
            shadow = self._last_row(features, model)
            rows += [{"symbol": s, "model_version": version, "role": "shadow",
                      "probability": _finite(shadow[j])} for j, s in enumerate(history.symbols)]
        self.store.save_predictions(self.run_id, when, rows)
        self._seen += 1
        if self._seen % self.spec.check_every == 0:
            self.check_drift(history, features, entry)
        return {PROBABILITY_FEATURE: [_finite(v) for v in live]}

    def assess(self, history: Bars, features: Mapping[str, np.ndarray], entry):
        """PSI of the last ``window`` bars' features and the live hit rate: the
        :class:`~framework.ml.drift.DriftReport` (``None`` without a baseline). No side effects."""
        from framework.ml.drift import DriftSpec, assess_drift

        if self.baseline is None:
            return None
        # only bars traded by this run: the warm-up before it may be the model's training data
        first = 0 if self.since is None else int(history.index.searchsorted(self.since))
        first = max(first, history.n_bars - self.spec.window)
        recent = {k: np.asarray(v, dtype=np.float64)[first:].reshape(-1) for k, v in features.items()}
        predicted, realised = hit_pairs(self.strategy, history, entry.params, entry.model, first)
        return assess_drift(self.baseline, recent, predicted, realised, self.spec.drift or DriftSpec())

    def check_drift(self, history: Bars, features: Mapping[str, np.ndarray], entry):
        """:meth:`assess`, then an event and an alert for findings not raised at the last check."""
        report = self.assess(history, features, entry)
        if report is None:
            return None
        # keyed by what crossed (a feature, the hit rate), not by the message: its numbers move
        keys = frozenset(k for k, v in report.psi.items() if v == v and v >= self._spec().psi_alert)
        if any(a.startswith("hit rate") for a in report.alerts):
            keys |= {"hit rate"}
        if keys - self._raised:
            body = "\n".join(report.alerts)
            self.store.event(self.run_id, "drift", body)
            self.alert("error", f"model drift: {self.strategy.name} {self.live_version}", body, "warning")
        self._raised = keys
        return report

    def _spec(self):
        from framework.ml.drift import DriftSpec

        return self.spec.drift or DriftSpec()

    def _last_row(self, features, model) -> np.ndarray:
        last = {k: np.asarray(v)[-1:] for k, v in features.items()}
        return np.asarray(self.strategy.probabilities(last, model), dtype=np.float64).reshape(-1)


def hit_pairs(strategy, bars: Bars, params, model, first: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and realised directions (+1/-1, ``nan`` unknown) of bars ``first`` on, pooled
    over symbols in time order: a prediction counts once its outcome resolved within ``bars``."""
    prob, outcome = strategy.predictions(bars, params, model)
    prob = np.asarray(prob, dtype=np.float64)[first:]
    outcome = np.asarray(outcome, dtype=np.float64)[first:]
    predicted = np.where(np.isfinite(prob), np.where(prob >= 0.5, 1.0, -1.0), np.nan)
    realised = np.where(np.isfinite(outcome), np.where(outcome > 0, 1.0, -1.0), np.nan)
    return predicted.reshape(-1), realised.reshape(-1)


# -- fw ml compare / status ------------------------------------------------------------------------
@dataclass(frozen=True)
class VersionScore:
    """How one model version's stored predictions of a run turned out."""

    version: str
    role: str
    predictions: int
    resolved: int
    hit_rate: float
    traded_bars: int
    pnl_if_traded: float  # sum of position x next open-to-open return, before costs


def compare_versions(store, run_id: str, strategy, params, versions: list[str]) -> list[VersionScore]:
    """Score ``versions``' predictions stored for ``run_id`` (see the module docstring)."""
    run = store.run(run_id)
    if run is None:
        raise DataError(f"no paper run {run_id!r} in {store.url}; see `fw status` for runs.")
    stored = store.predictions(run_id)
    if stored.empty:
        raise DataError(
            f"run {run_id!r} stored no model predictions; only learned strategies record them "
            "(fw paper ml_classifier, with --challenger VERSION for a shadow model)."
        )
    bars = store.load_bars(run_id, run["symbols"])
    outcome = _outcomes(strategy, bars, params)
    returns = _next_open_returns(bars)
    out = []
    for version in versions:
        mine = stored[stored["model_version"] == version]
        if mine.empty:
            have = sorted(stored["model_version"].unique())
            raise DataError(f"run {run_id!r} has no predictions of {version!r}; it has {have}.")
        out.append(_score(version, mine, bars, outcome, returns, params))
    return out


def _outcomes(strategy, bars: Bars, params) -> np.ndarray:
    from framework.ml.dataset import label_grid

    label = label_grid(bars, strategy.label_spec(params)).label
    if getattr(params, "meta_label", False):
        side = strategy._side(strategy.features(bars, params))
        label = np.where(side != 0, side * label, np.nan)
    return np.where(np.isfinite(label), (label > 0).astype(np.float64), np.nan)


def _next_open_returns(bars: Bars) -> np.ndarray:
    """Return earned by a position decided at bar i: open[i+1] -> open[i+2] (nan at the end)."""
    out = np.full(bars.open.shape, np.nan)
    out[:-2] = bars.open[2:] / bars.open[1:-1] - 1.0
    return out


def _score(version, mine: pd.DataFrame, bars: Bars, outcome, returns, params) -> VersionScore:
    from framework.ml.sizing import SizingSpec, probability_to_position

    rows = {t.isoformat(): i for i, t in enumerate(bars.index)}
    cols = {s: j for j, s in enumerate(bars.symbols)}
    i = mine["bar_time"].map(rows).to_numpy()
    j = mine["symbol"].map(cols).to_numpy()
    ok = ~(pd.isna(i) | pd.isna(j))
    i, j = i[ok].astype(int), j[ok].astype(int)
    prob = mine["probability"].to_numpy(dtype=np.float64)[ok]
    real = outcome[i, j]
    known = np.isfinite(prob) & np.isfinite(real)
    hit = float(((prob[known] >= 0.5) == (real[known] > 0)).mean()) if known.any() else math.nan
    sizing = SizingSpec(params.threshold, params.scaling, params.full_at,
                        True if params.meta_label else params.long_only, params.kelly)
    position = probability_to_position(prob, sizing)
    earned = returns[i, j]
    traded = (position != 0) & np.isfinite(earned)
    return VersionScore(version, str(mine["role"].iloc[0]), int(len(prob)), int(known.sum()), hit,
                        int(traded.sum()), float((position[traded] * earned[traded]).sum()))


def score_lines(scores: list[VersionScore]) -> list[str]:
    """``fw ml compare`` output."""
    lines = [f"{'version':<8} {'role':<7} {'predictions':>11} {'resolved':>8} {'hit rate':>8} "
             f"{'traded':>6} {'P&L if traded':>13}"]
    for s in scores:
        hit = "n/a" if s.hit_rate != s.hit_rate else f"{s.hit_rate:.1%}"
        lines.append(f"{s.version:<8} {s.role:<7} {s.predictions:>11} {s.resolved:>8} {hit:>8} "
                     f"{s.traded_bars:>6} {s.pnl_if_traded:>+13.2%}")
    lines.append("P&L if traded: sum over bars of the position the run's sizing gives the probability "
                 "times the next open-to-open return, per symbol, before costs.")
    return lines


def live_accuracy_lines(strategy: str, version: str, db: str | None = None) -> list[str]:
    """``fw ml status``: how ``version`` has predicted in the stored paper runs of ``strategy``."""
    from live.state import Store

    store = Store(db)
    try:
        runs = [r for r in store.runs() if r["strategy"] == strategy]
        counts = []
        for run in runs:
            stored = store.predictions(run["run_id"])
            n = int((stored["model_version"] == version).sum()) if not stored.empty else 0
            if n:
                counts.append(f"{run['run_id']}: {n} predictions")
        return ["paper: " + "; ".join(counts) + " (fw ml compare for hit rates)"] if counts else []
    finally:
        store.close()


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
