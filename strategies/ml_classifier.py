"""``ml_classifier``: a learned strategy that trades a calibrated up/down probability."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from framework.errors import ParameterError, StrategyError, unknown_name_message
from framework.ml.dataset import LABEL_KINDS, LabelSpec, label_grid, training_rows
from framework.ml.features import (
    FeatureSpec,
    feature_names,
    feature_warmup,
    ml_features,
    stack_rows,
)
from framework.ml.models import MODEL_KINDS, check_kind
from framework.ml.sizing import SCALINGS, SizingSpec, probability_to_position
from framework.ml.training import (
    CALIBRATIONS,
    TrainedModel,
    TrainSpec,
    fit_classifier,
    fit_ensemble,
)
from framework.strategy import Params, Strategy, param
from framework.types import Bars

ENSEMBLE_KINDS: tuple[str, ...] = ("logistic", "random_forest", "gradient_boosting")
MODEL_CHOICES: tuple[str, ...] = (*MODEL_KINDS, "ensemble")
# EMA and Wilder-smoothed features (MACD, RSI, ADX) remember their seed with weight about
# (1 - alpha)^k, alpha = 1/window (Wilder) or 2/(span+1) (EMA); 25 such windows make it < 1e-10,
# so a decision does not depend on how much earlier history was loaded (the warm-up sensitivity
# check, which continuous position sizes would otherwise fail by float noise).
SETTLE_WINDOWS = 25
PRIMARY_FEATURE = "ret_20"  # meta-labelling's primary signal: the sign of the 20-bar return


@dataclass(frozen=True)
class MlParams(Params):
    model: str = param("logistic", stage="fit",
                       doc="logistic, random_forest, gradient_boosting, lightgbm, xgboost or ensemble")
    label: str = param("triple_barrier", stage="fit", doc="triple_barrier or forward")
    horizon: int = param(10, stage="fit", low=1, high=250, doc="bars each label looks ahead")
    barrier: float = param(1.0, stage="fit", low=0.05, high=20.0,
                           doc="triple-barrier distance, in volatility over the horizon")
    meta_label: bool = param(False, stage="fit",
                             doc="learn when the 20-bar momentum sign is right, trade that side")
    calibration: str = param("sigmoid", stage="fit", doc="none, sigmoid or isotonic")
    search: bool = param(True, stage="fit", doc="hyper-parameter search with purged CV")
    cv_splits: int = param(4, stage="fit", low=2, high=20, doc="purged cross-validation splits")
    seed: int = param(0, stage="fit", low=0, doc="random state of the estimators")
    threshold: float = param(0.55, space=(0.5, 0.55, 0.6), stage="target", low=0.5, high=0.99,
                             doc="probability needed to hold a position")
    scaling: str = param("confidence", doc="fixed or confidence (size grows with probability)")
    full_at: float = param(0.7, low=0.51, high=1.0, doc="probability of a full-size position")
    long_only: bool = param(True, doc="never short")
    kelly: float = param(0.0, low=0.0, high=1.0, doc="cap at this fraction of Kelly (0 = off)")

    def check(self) -> None:
        if self.model not in MODEL_CHOICES:
            raise ParameterError(unknown_name_message("model", self.model, MODEL_CHOICES))
        if self.model != "ensemble":
            check_kind(self.model)
        for name, value, choices in (("label", self.label, LABEL_KINDS),
                                     ("calibration", self.calibration, CALIBRATIONS),
                                     ("scaling", self.scaling, SCALINGS)):
            if value not in choices:
                raise ParameterError(unknown_name_message(name, value, choices))
        if self.full_at <= self.threshold and self.scaling == "confidence":
            raise ParameterError(
                f"full_at ({self.full_at}) must be above threshold ({self.threshold}) with "
                "confidence scaling; raise full_at or use --set scaling=fixed."
            )


class MlClassifier(Strategy):
    """Learned classifier: calibrated probability that the next ``horizon`` bars go up.

    Thesis: returns, volatility, RSI, MACD, ADX, band and channel positions, volume and the day
    of the week carry a little information about the next few bars' direction. Each fit learns
    it from the training window only (labels: triple-barrier or forward sign, weighted by
    uniqueness; hyper-parameters by purged, embargoed cross-validation; Platt-calibrated);
    ``target`` holds a position when the probability clears ``threshold``, sized by confidence
    (and optionally capped by Kelly). Expect little: daily direction is close to a coin flip,
    and the walk-forward report shows the out-of-sample accuracy and AUC per fold as they are.
    Without a model (``fw ml train``, the registry, or a walk-forward fold) it refuses to trade.
    """

    name = "ml_classifier"
    params_type = MlParams
    feature_spec = FeatureSpec()

    def warmup(self, p: MlParams) -> int:
        spec = self.feature_spec
        slowest = max(spec.rsi_window, spec.adx_window, (spec.macd[1] + 1) // 2)
        # ADX smooths a Wilder-smoothed series again: one more pair of windows to settle
        return max(feature_warmup(spec), SETTLE_WINDOWS * slowest + 2 * spec.adx_window)

    def features(self, bars: Bars, p: MlParams) -> dict[str, np.ndarray]:
        return ml_features(bars, self.feature_spec)

    def fit(self, bars: Bars, p: MlParams) -> TrainedModel:
        """Learn from ``bars`` after the warm-up (labels resolved inside ``bars`` only)."""
        feats = ml_features(bars, self.feature_spec)
        labels = label_grid(bars, self.label_spec(p))
        side = np.sign(feats[PRIMARY_FEATURE]) if p.meta_label else None
        rows = training_rows(feats, feature_names(self.feature_spec), labels, self.warmup(p), side)
        spec = TrainSpec(kind="logistic" if p.model == "ensemble" else p.model, seed=p.seed,
                         search=p.search, cv_splits=p.cv_splits, embargo=p.horizon,
                         calibration=p.calibration)
        model = fit_ensemble(rows, ENSEMBLE_KINDS, spec) if p.model == "ensemble" else fit_classifier(rows, spec)
        first = min(self.warmup(p), bars.n_bars - 1)
        model.window = (bars.index[first].isoformat(), bars.index[-1].isoformat())
        return model

    def target(self, features, p: MlParams, model: Any = None) -> np.ndarray:
        prob = self.probabilities(features, model)
        sizing = SizingSpec(p.threshold, p.scaling, p.full_at, True if p.meta_label else p.long_only, p.kelly)
        size = probability_to_position(prob, sizing, model.payoff)
        if not p.meta_label:
            return size
        out = size * self._side(features)
        return np.maximum(out, 0.0) if p.long_only else out

    def probabilities(self, features, model: Any) -> np.ndarray:
        """The model's probability of a positive label per (bar, asset); ``nan`` in warm-up."""
        if model is None:
            raise StrategyError(
                "ml_classifier needs a trained model: train one with `fw ml train ml_classifier "
                "--symbols ...`, or run it in a walk-forward backtest (each fold fits its own)."
            )
        missing = [n for n in model.feature_names if n not in features]
        if missing:
            raise StrategyError(
                f"the model was trained on features {missing} that this strategy no longer "
                "computes; retrain it with `fw ml train ml_classifier`."
            )
        shape = np.asarray(features[model.feature_names[0]]).shape
        X, bar, asset = stack_rows(features, model.feature_names)
        prob = np.full(shape, np.nan)
        prob[bar, asset] = model.predict_up(X)
        return prob

    def predictions(self, bars: Bars, p: MlParams, model: Any) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and realised outcomes (1/0, ``nan`` unknown) per (bar, asset): what
        the walk-forward's model evaluation and the live accuracy checks score."""
        feats = self.features(bars, p)
        prob = self.probabilities(feats, model)
        label = label_grid(bars, self.label_spec(p)).label
        if p.meta_label:
            side = self._side(feats)
            label = np.where(side != 0, side * label, np.nan)
        outcome = np.where(np.isfinite(label), (label > 0).astype(np.float64), np.nan)
        return prob, outcome

    @staticmethod
    def _side(features) -> np.ndarray:
        return np.sign(np.nan_to_num(np.asarray(features[PRIMARY_FEATURE], dtype=np.float64)))

    @staticmethod
    def label_spec(p: MlParams) -> LabelSpec:
        return LabelSpec(kind=p.label, horizon=p.horizon, barrier=p.barrier)

