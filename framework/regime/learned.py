"""A learned regime detector: a Gaussian hidden Markov model (needs the optional ``hmmlearn``).

Two steps, so walk-forward can keep training strictly in-sample:

* :func:`fit_hmm_regimes` (the ``fit`` hook) trains a diagonal Gaussian HMM on the in-sample
  closes only and maps its states to regimes by their return mean and variance;
* :func:`hmm_regime_labels` labels any bars with that frozen model **causally**: it runs the HMM
  forward filter (``P(state_i | observations_0..i)``), never the smoother or Viterbi, which would
  use later bars, then applies the same minimum-duration hysteresis as the rule classifier.

Observations per bar: the log return and the annualized realized volatility over
``volatility_window`` returns. State mapping: the state with the largest return variance is
VOLATILE; of the others, the highest mean return is BULL, the lowest BEAR (with >= 3 states) and
any in between CHOPPY.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from framework.errors import ConfigError, DataError
from framework.indicators import realized_volatility
from framework.regime._nb import forward_filter_nb
from framework.regime.rules import hold_min_duration
from framework.regime.spec import BEAR, BULL, CHOPPY, VOLATILE


@dataclass(frozen=True)
class HmmSpec:
    """Settings of the Gaussian HMM detector.

    Attributes
    ----------
    n_states : int
        Hidden states, 2..4 (each maps to one regime, see the module docstring).
    volatility_window : int
        Returns in the realized volatility observation.
    n_iter : int
        EM iterations of the fit.
    seed : int
        Random seed of the fit (results are deterministic for a seed).
    min_duration : int
        Hysteresis applied to the filtered labels.
    """

    n_states: int = 4
    volatility_window: int = 21
    n_iter: int = 100
    seed: int = 0
    min_duration: int = 10

    def __post_init__(self) -> None:
        checks = {
            "n_states": (2, 4),
            "volatility_window": (2, None),
            "n_iter": (1, None),
            "seed": (0, None),
            "min_duration": (1, None),
        }
        for name, (low, high) in checks.items():
            value = getattr(self, name)
            bad = isinstance(value, bool) or not isinstance(value, int) or value < low
            if bad or (high is not None and value > high):
                limits = f">= {low}" if high is None else f"in {low}..{high}"
                raise ConfigError(f"HmmSpec.{name} must be an int {limits}; got {value!r}.")


@dataclass(frozen=True, eq=False)
class HmmRegimeModel:
    """A fitted HMM: parameters, the state -> regime map and what it was trained on."""

    spec: HmmSpec
    start: np.ndarray
    transition: np.ndarray
    means: np.ndarray
    variances: np.ndarray
    state_regimes: tuple[int, ...]
    n_train: int


def hmm_observations(close: np.ndarray, volatility_window: int) -> np.ndarray:
    """Causal ``(bars, 2)`` observations: log return and realized volatility (NaN in warm-up)."""
    c = np.asarray(close, dtype=np.float64)
    if c.ndim != 1:
        raise DataError(f"HMM regimes take one close series (1-D); got shape {c.shape}.")
    with np.errstate(invalid="ignore", divide="ignore"):
        returns = np.r_[np.nan, np.log(c[1:] / c[:-1])]
    return np.column_stack([returns, realized_volatility(c, volatility_window)])


def map_states(means: np.ndarray, variances: np.ndarray) -> tuple[int, ...]:
    """Regime of each state from its return mean and variance (column 0 of the observations)."""
    k = len(means)
    regimes = [CHOPPY] * k
    wild = int(np.argmax(variances[:, 0]))
    regimes[wild] = VOLATILE
    rest = sorted((s for s in range(k) if s != wild), key=lambda s: means[s, 0])
    regimes[rest[-1]] = BULL
    if len(rest) >= 2:
        regimes[rest[0]] = BEAR
    return tuple(regimes)


def fit_hmm_regimes(close: np.ndarray, spec: HmmSpec | None = None) -> HmmRegimeModel:
    """Fit the HMM on in-sample closes only (the ``fit`` hook).

    Parameters
    ----------
    close : ndarray
        In-sample closes, ``(bars,)``; pass only the training window.
    spec : HmmSpec, optional
        Settings; default ``HmmSpec()``.

    Raises
    ------
    ConfigError
        ``hmmlearn`` is not installed (``pip install 'fw[ml]'``).
    DataError
        Too few valid observations to fit (fewer than 20 per state).
    """
    spec = HmmSpec() if spec is None else spec
    try:
        from hmmlearn.hmm import GaussianHMM
    except ImportError as exc:
        raise ConfigError(
            "the HMM regime detector needs the optional package hmmlearn; install it with "
            "`pip install 'fw[ml]'` (or `pip install hmmlearn`)."
        ) from exc
    obs = hmm_observations(close, spec.volatility_window)
    rows = obs[~np.isnan(obs).any(axis=1)]
    if len(rows) < 20 * spec.n_states:
        raise DataError(
            f"only {len(rows)} valid bars to fit a {spec.n_states}-state HMM; need at least "
            f"{20 * spec.n_states}. Give a longer in-sample window."
        )
    # Scale to unit variance so EM's initial k-means and variance floor treat both columns alike.
    scale = rows.std(axis=0)
    model = GaussianHMM(
        n_components=spec.n_states,
        covariance_type="diag",
        n_iter=spec.n_iter,
        random_state=spec.seed,
    )
    model.fit(rows / scale)
    means = model.means_ * scale
    variances = np.diagonal(model.covars_, axis1=1, axis2=2) * scale**2
    return HmmRegimeModel(
        spec=spec,
        start=np.asarray(model.startprob_, dtype=np.float64),
        transition=np.asarray(model.transmat_, dtype=np.float64),
        means=means,
        variances=variances,
        state_regimes=map_states(means, variances),
        n_train=len(rows),
    )


def log_emission(obs: np.ndarray, means: np.ndarray, variances: np.ndarray) -> np.ndarray:
    """Diagonal Gaussian log density of each row under each state, ``(bars, states)``."""
    diff = obs[:, None, :] - means[None, :, :]
    terms = np.log(2 * np.pi * variances)[None, :, :] + diff**2 / variances[None, :, :]
    return -0.5 * terms.sum(axis=2)


def filtered_probabilities(model: HmmRegimeModel, close: np.ndarray) -> np.ndarray:
    """Causal ``P(state_i | observations up to i)``, ``(bars, states)``; NaN before the first."""
    obs = hmm_observations(close, model.spec.volatility_window)
    emission = np.ascontiguousarray(log_emission(obs, model.means, model.variances))
    return forward_filter_nb(emission, model.start, model.transition)


def hmm_regime_labels(model: HmmRegimeModel, close: np.ndarray) -> np.ndarray:
    """Regime per bar (0..3, -1 in warm-up) from the filtered state, after hysteresis.

    Parameters
    ----------
    model : HmmRegimeModel
        From :func:`fit_hmm_regimes` on an earlier (in-sample) window.
    close : ndarray
        Closes to label, ``(bars,)``; may extend past the training window.
    """
    probs = filtered_probabilities(model, close)
    ready = ~np.isnan(probs).any(axis=1)
    states = np.argmax(np.where(ready[:, None], probs, 0.0), axis=1)
    regimes = np.asarray(model.state_regimes, dtype=np.int64)[states]
    raw = np.where(ready, regimes, -1).astype(np.int64)
    return hold_min_duration(raw, model.spec.min_duration)


__all__ = [
    "HmmRegimeModel",
    "HmmSpec",
    "filtered_probabilities",
    "fit_hmm_regimes",
    "hmm_observations",
    "hmm_regime_labels",
    "log_emission",
    "map_states",
]
