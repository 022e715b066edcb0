"""Drift measures: has the live world moved away from the one a model was trained on?

Two independent symptoms are watched:

* **Feature drift**, by the population stability index (PSI) of each feature. At fit time
  :meth:`FeatureBaseline.fit` cuts each training feature into quantile bins and records the
  share of training values per bin; live values are later binned with the *same* edges and
  :func:`population_stability_index` compares the two histograms. The usual reading is
  PSI < 0.1 stable, 0.1-0.25 moving, >= 0.25 moved.
* **Prediction decay**, by :func:`rolling_hit_rate`: the share of the most recent known
  predictions whose direction matched the realised outcome.

:func:`assess_drift` combines both into a :class:`DriftReport` whose alerts and warnings are
sentences a person can act on. The baseline is plain JSON (:meth:`FeatureBaseline.to_dict`) so it
can live in a model registry card next to the model it describes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from framework.errors import DataError, ParameterError

BASELINE_FORMAT = 1
"""Version of the :meth:`FeatureBaseline.to_dict` layout; bumped if the layout changes."""

MIN_VALUES_PER_BIN = 5
"""A feature needs ``bins * MIN_VALUES_PER_BIN`` finite training values to get quantile bins."""


# --------------------------------------------------------------------------------------------
# Baseline
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureBins:
    """The training histogram of one feature.

    Attributes
    ----------
    edges : tuple of float
        Bin edges, strictly increasing, starting at ``-inf`` and ending at ``+inf``. Bins are
        closed on the right: bin ``k`` holds ``edges[k] < x <= edges[k + 1]``.
    expected : tuple of float
        Share of the finite training values in each bin (``len(edges) - 1`` entries).
    n_fit : int
        Number of finite training values the histogram was built from.
    """

    edges: tuple[float, ...]
    expected: tuple[float, ...]
    n_fit: int

    def __post_init__(self) -> None:
        edges = self.edges
        if len(edges) < 2 or edges[0] != -math.inf or edges[-1] != math.inf:
            raise DataError(
                f"bin edges must start at -inf and end at +inf; got {edges!r}. "
                "Rebuild the baseline with FeatureBaseline.fit."
            )
        inner = edges[1:-1]
        if any(not math.isfinite(e) for e in inner) or any(
            b <= a for a, b in zip(edges, edges[1:], strict=False)
        ):
            raise DataError(
                f"inner bin edges must be finite and strictly increasing; got {inner!r}. "
                "Rebuild the baseline with FeatureBaseline.fit."
            )
        if len(self.expected) != len(edges) - 1:
            raise DataError(
                f"{len(edges) - 1} bins need {len(edges) - 1} expected proportions; "
                f"got {len(self.expected)}. Rebuild the baseline with FeatureBaseline.fit."
            )
        if any(not (math.isfinite(p) and p >= 0) for p in self.expected):
            raise DataError(f"expected proportions must be finite and >= 0; got {self.expected!r}.")
        if isinstance(self.n_fit, bool) or not isinstance(self.n_fit, int) or self.n_fit < 0:
            raise DataError(f"n_fit must be an integer >= 0; got {self.n_fit!r}.")

    @property
    def n_bins(self) -> int:
        """Number of bins (1 for a feature that was constant or too short at fit time)."""
        return len(self.edges) - 1

    def proportions(self, values: np.ndarray) -> np.ndarray | None:
        """Share of the finite ``values`` in each bin, or ``None`` when none is finite."""
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return None
        counts = np.bincount(_bin_index(finite, self.edges), minlength=self.n_bins)
        return counts / finite.size


@dataclass(frozen=True)
class FeatureBaseline:
    """Per-feature training histograms, the reference live data is compared against.

    Build it with :meth:`fit`; store it with :meth:`to_dict` and load it with :meth:`from_dict`.
    Treat ``features`` as read-only.

    Attributes
    ----------
    bins : int
        Number of quantile bins requested at fit time (a feature may have fewer after duplicate
        edges are collapsed).
    features : dict of str to FeatureBins
        One histogram per feature name, in fit order.
    """

    bins: int
    features: dict[str, FeatureBins]

    def __post_init__(self) -> None:
        _check_bins(self.bins)
        for name, fb in self.features.items():
            if not isinstance(name, str) or not isinstance(fb, FeatureBins):
                raise DataError(
                    f"features must map str names to FeatureBins; got {name!r}: "
                    f"{type(fb).__name__}."
                )

    @classmethod
    def fit(cls, features: Mapping[str, np.ndarray], bins: int = 10) -> FeatureBaseline:
        """Record the training distribution of each feature.

        Parameters
        ----------
        features : mapping of str to 1-D array
            Training values per feature name. NaN and +-inf are ignored.
        bins : int
            Number of quantile bins. Edges equal to one another (heavy ties) are collapsed, so a
            feature may get fewer bins. A feature with fewer than ``bins * 5`` finite values, or
            a constant one, gets a single bin (its PSI is then always 0: there is too little
            information to compare shapes).

        Returns
        -------
        FeatureBaseline
        """
        _check_bins(bins)
        if not features:
            raise DataError(
                "no features to build a drift baseline from; pass a mapping of feature name "
                "to its training values."
            )
        fitted: dict[str, FeatureBins] = {}
        for name, raw in features.items():
            if not isinstance(name, str):
                raise DataError(f"feature names must be strings; got {name!r}.")
            values = _as_1d(name, raw)
            fitted[name] = _fit_one(values[np.isfinite(values)], bins)
        return cls(bins=bins, features=fitted)

    def psi(self, features: Mapping[str, np.ndarray]) -> dict[str, float]:
        """Population stability index of each baselined feature's live values.

        Parameters
        ----------
        features : mapping of str to 1-D array
            Live values per feature name. Names not in the baseline are ignored.

        Returns
        -------
        dict of str to float
            One entry per baselined feature, in baseline order; NaN when the feature is missing
            from ``features`` or has no finite live value.
        """
        out: dict[str, float] = {}
        for name, fb in self.features.items():
            if name not in features:
                out[name] = math.nan
                continue
            actual = fb.proportions(_as_1d(name, features[name]))
            if actual is None:
                out[name] = math.nan
                continue
            out[name] = population_stability_index(np.asarray(fb.expected), actual)
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe description; :meth:`from_dict` rebuilds an equal baseline.

        The outer ``+-inf`` edges are implied (JSON has no infinity), so only the finite inner
        edges are written. Floats are plain Python floats, which JSON round-trips exactly.
        """
        return {
            "format": BASELINE_FORMAT,
            "bins": self.bins,
            "features": {
                name: {
                    "inner_edges": list(fb.edges[1:-1]),
                    "expected": list(fb.expected),
                    "n_fit": fb.n_fit,
                }
                for name, fb in self.features.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureBaseline:
        """Rebuild a baseline written by :meth:`to_dict`.

        Raises
        ------
        DataError
            When the layout, a key or a value is not what :meth:`to_dict` writes.
        """
        if not isinstance(data, Mapping):
            raise DataError(f"a drift baseline must be a mapping; got {type(data).__name__}.")
        fmt = data.get("format")
        if fmt != BASELINE_FORMAT:
            raise DataError(
                f"drift baseline format {fmt!r} is not supported (expected {BASELINE_FORMAT}); "
                "rebuild it with FeatureBaseline.fit."
            )
        raw_features = _require(data, "features", "the drift baseline")
        if not isinstance(raw_features, Mapping):
            raise DataError(
                f"drift baseline 'features' must be a mapping; got {type(raw_features).__name__}."
            )
        bins = _require(data, "bins", "the drift baseline")
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
            raise DataError(f"drift baseline 'bins' must be an integer >= 2; got {bins!r}.")
        features = {name: _bins_from_dict(name, entry) for name, entry in raw_features.items()}
        return cls(bins=bins, features=features)


def _check_bins(bins: object) -> None:
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise ParameterError(f"bins must be an integer >= 2; got {bins!r}.")


def _as_1d(name: str, raw: object) -> np.ndarray:
    try:
        values = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"feature {name!r} must hold numbers; converting it failed: {exc}") from exc
    if values.ndim != 1:
        raise DataError(
            f"feature {name!r} must be 1-D (one value per bar); got shape {values.shape}."
        )
    return values


def _fit_one(finite: np.ndarray, bins: int) -> FeatureBins:
    """Quantile histogram of the finite training values of one feature."""
    n = int(finite.size)
    single = FeatureBins(edges=(-math.inf, math.inf), expected=(1.0,), n_fit=n)
    if n < bins * MIN_VALUES_PER_BIN:
        return single
    # inverted_cdf quantiles are actual data values, and an edge equal to the maximum is
    # dropped: with right-closed bins every bin then holds at least one training value, so
    # no expected proportion is 0 by construction.
    qs = np.quantile(finite, np.arange(1, bins) / bins, method="inverted_cdf")
    inner = np.unique(qs)
    inner = inner[inner < finite.max()]
    if inner.size == 0:  # constant feature
        return single
    edges = (-math.inf, *(float(e) for e in inner), math.inf)
    counts = np.bincount(_bin_index(finite, edges), minlength=len(edges) - 1)
    expected = tuple(float(c) / n for c in counts)
    return FeatureBins(edges=edges, expected=expected, n_fit=n)


def _bin_index(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Bin of each finite value; bins are right-closed, ``edges[k] < x <= edges[k + 1]``."""
    return np.searchsorted(np.asarray(edges[1:-1], dtype=np.float64), values, side="left")


def _require(data: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise DataError(f"{where} has no {key!r} key; rebuild it with FeatureBaseline.fit.")
    return data[key]


def _bins_from_dict(name: object, entry: object) -> FeatureBins:
    where = f"drift baseline feature {name!r}"
    if not isinstance(entry, Mapping):
        raise DataError(f"{where} must be a mapping; got {type(entry).__name__}.")
    inner = _require(entry, "inner_edges", where)
    expected = _require(entry, "expected", where)
    try:
        inner_t = tuple(float(e) for e in inner)
        expected_t = tuple(float(p) for p in expected)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"{where}: edges and proportions must be lists of numbers ({exc})."
        ) from exc
    try:
        return FeatureBins(
            edges=(-math.inf, *inner_t, math.inf),
            expected=expected_t,
            n_fit=_require(entry, "n_fit", where),
        )
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from exc


# --------------------------------------------------------------------------------------------
# PSI
# --------------------------------------------------------------------------------------------


def population_stability_index(
    expected_props: np.ndarray, actual_props: np.ndarray, floor: float = 1e-4
) -> float:
    """``sum((a - e) * ln(a / e))`` over bins; 0 when the histograms agree, larger as they part.

    Parameters
    ----------
    expected_props, actual_props : 1-D array
        Share of values per bin in the reference (training) and live samples, same length.
    floor : float
        Each proportion is raised to at least ``floor`` before the sum. A bin that is empty in
        either sample would otherwise give ``ln(0)`` (an infinite PSI from a single empty bin,
        which is common with short live windows); the floor caps one empty bin's contribution
        at a large but finite value instead.

    Returns
    -------
    float
        The index, always >= 0.
    """
    if not (isinstance(floor, int | float) and math.isfinite(floor) and 0 < floor < 1):
        raise ParameterError(f"floor must be a number in (0, 1); got {floor!r}.")
    e = np.asarray(expected_props, dtype=np.float64)
    a = np.asarray(actual_props, dtype=np.float64)
    if e.ndim != 1 or e.shape != a.shape or e.size == 0:
        raise DataError(
            f"expected and actual proportions must be non-empty 1-D arrays of equal length; "
            f"got shapes {e.shape} and {a.shape}."
        )
    for label, p in (("expected", e), ("actual", a)):
        if not np.all(np.isfinite(p) & (p >= 0)):
            raise DataError(f"{label} proportions must be finite and >= 0; got {p.tolist()}.")
    e = np.maximum(e, floor)
    a = np.maximum(a, floor)
    # Each term has the sign of (a - e) twice, so it is >= 0; clip the rounding noise.
    return max(float(np.sum((a - e) * np.log(a / e))), 0.0)


# --------------------------------------------------------------------------------------------
# Hit rate
# --------------------------------------------------------------------------------------------


def rolling_hit_rate(
    predicted: np.ndarray, realised: np.ndarray, window: int, min_pairs: int | None = None
) -> np.ndarray:
    """Share of correct directions over the last ``window`` known prediction/outcome pairs.

    Parameters
    ----------
    predicted, realised : 1-D array
        Predicted and realised direction per bar: +1, -1, or NaN (no prediction, or outcome not
        known yet). A pair is *known* when both are finite.
    window : int
        Number of most recent known pairs averaged (a window over known pairs, not over bars,
        so bars without a prediction do not dilute it).
    min_pairs : int, optional
        Known pairs needed before a value is given; ``max(window // 2, 1)`` when omitted.

    Returns
    -------
    ndarray
        Same length as the inputs. Entry ``i`` is the share of ``predicted == realised`` among
        the last ``window`` known pairs at indices ``<= i`` (causal: nothing after ``i`` is
        used); NaN while fewer than ``min_pairs`` pairs are known. For a causal series
        ``realised[i]`` must only be filled once the outcome of bar ``i`` is known.
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ParameterError(f"window must be an integer >= 1; got {window!r}.")
    if min_pairs is None:
        min_pairs = max(window // 2, 1)
    if isinstance(min_pairs, bool) or not isinstance(min_pairs, int) or min_pairs < 1:
        raise ParameterError(f"min_pairs must be an integer >= 1; got {min_pairs!r}.")
    p = _directions("predicted", predicted)
    r = _directions("realised", realised)
    if p.shape != r.shape:
        raise DataError(
            f"predicted and realised must have the same length; got {p.size} and {r.size}."
        )
    known = np.isfinite(p) & np.isfinite(r)
    n_known = np.cumsum(known)  # known pairs at indices <= i
    # Cumulative hits along the sequence of known pairs, with a leading 0 so that
    # hits_upto[k] counts hits among the first k known pairs.
    hits_upto = np.concatenate(([0], np.cumsum(p[known] == r[known])))
    in_window = np.minimum(n_known, window)
    hits = hits_upto[n_known] - hits_upto[n_known - in_window]
    out = np.full(p.size, np.nan)
    ready = n_known >= min_pairs
    out[ready] = hits[ready] / in_window[ready]
    return out


def _directions(label: str, raw: object) -> np.ndarray:
    try:
        values = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{label} must hold +1, -1 or NaN; converting it failed: {exc}") from exc
    if values.ndim != 1:
        raise DataError(f"{label} must be 1-D (one value per bar); got shape {values.shape}.")
    bad = ~(np.isnan(values) | (values == 1.0) | (values == -1.0))
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"{label}[{i}] is {float(values[i])!r}; expected +1, -1 or NaN. Use NaN (not 0) for "
            "'no prediction' or 'outcome not known yet'."
        )
    return values


# --------------------------------------------------------------------------------------------
# Assessment
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftSpec:
    """When drift becomes a warning or an alert.

    Attributes
    ----------
    psi_warn, psi_alert : float
        A feature whose PSI reaches ``psi_warn`` is a warning, ``psi_alert`` an alert.
    accuracy_window : int
        Known prediction/outcome pairs in the rolling hit rate.
    min_accuracy : float
        A hit rate below this is an alert ...
    min_outcomes : int
        ... once at least this many outcomes are in the window (fewer is noise).
    """

    psi_warn: float = 0.1
    psi_alert: float = 0.25
    accuracy_window: int = 60
    min_accuracy: float = 0.45
    min_outcomes: int = 20

    def __post_init__(self) -> None:
        for name in ("psi_warn", "psi_alert", "min_accuracy"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ParameterError(f"{name} must be a number; got {value!r}.")
        for name in ("accuracy_window", "min_outcomes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParameterError(f"{name} must be an integer >= 1; got {value!r}.")
        if not (math.isfinite(self.psi_warn) and self.psi_warn > 0):
            raise ParameterError(f"psi_warn must be a finite number > 0; got {self.psi_warn!r}.")
        if not (math.isfinite(self.psi_alert) and self.psi_alert >= self.psi_warn):
            raise ParameterError(
                f"psi_alert must be finite and >= psi_warn ({self.psi_warn}); "
                f"got {self.psi_alert!r}."
            )
        if not 0.0 <= self.min_accuracy <= 1.0:
            raise ParameterError(f"min_accuracy must be in [0, 1]; got {self.min_accuracy!r}.")
        if self.min_outcomes > self.accuracy_window:
            raise ParameterError(
                f"min_outcomes ({self.min_outcomes}) must be <= accuracy_window "
                f"({self.accuracy_window}), or the hit-rate alert could never fire; lower "
                "min_outcomes or widen the window."
            )


@dataclass(frozen=True)
class DriftReport:
    """Result of :func:`assess_drift`.

    Attributes
    ----------
    psi : dict of str to float
        PSI per baselined feature (NaN: no live values).
    hit_rate : float
        Share of correct directions among the last ``n_outcomes`` known outcomes (NaN: none
        known yet). Judged only once ``n_outcomes >= DriftSpec.min_outcomes``.
    n_outcomes : int
        Known outcomes the hit rate is based on (at most the accuracy window).
    alerts, warnings : tuple of str
        Sentences saying what moved, by how much, and what to do.
    """

    psi: dict[str, float]
    hit_rate: float
    n_outcomes: int
    alerts: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def status(self) -> str:
        """``"alert"``, ``"warn"`` or ``"ok"``."""
        if self.alerts:
            return "alert"
        return "warn" if self.warnings else "ok"

    def lines(self) -> list[str]:
        """Human-readable lines: status, PSI per feature, hit rate, then alerts and warnings."""
        out = [f"drift: {self.status}"]
        width = max((len(n) for n in self.psi), default=0)
        for name, value in self.psi.items():
            shown = "n/a (no live values)" if math.isnan(value) else f"{value:.3f}"
            out.append(f"  PSI {name:<{width}}  {shown}")
        if math.isnan(self.hit_rate):
            out.append(f"  hit rate n/a ({self.n_outcomes} known outcomes)")
        else:
            out.append(f"  hit rate {self.hit_rate:.3f} over {self.n_outcomes} known outcomes")
        out.extend(f"ALERT: {a}" for a in self.alerts)
        out.extend(f"warning: {w}" for w in self.warnings)
        return out


def assess_drift(
    baseline: FeatureBaseline,
    live_features: Mapping[str, np.ndarray],
    predicted: np.ndarray,
    realised: np.ndarray,
    spec: DriftSpec | None = None,
) -> DriftReport:
    """Compare live features with the training baseline and check the recent hit rate.

    Parameters
    ----------
    baseline : FeatureBaseline
        Training histograms (from the model's registry card).
    live_features : mapping of str to 1-D array
        Recent live values per feature.
    predicted, realised : 1-D array
        Directions as for :func:`rolling_hit_rate`; only the latest rolling value is used.
    spec : DriftSpec, optional
        Thresholds; the defaults when omitted.

    Returns
    -------
    DriftReport
    """
    spec = spec if spec is not None else DriftSpec()
    psi = baseline.psi(live_features)
    alerts: list[str] = []
    warnings: list[str] = []
    for name, value in psi.items():
        if math.isnan(value):
            warnings.append(
                f"feature {name!r} has no live values (missing or all NaN): its drift cannot "
                "be measured; check the live feature pipeline"
            )
        elif value >= spec.psi_alert:
            alerts.append(
                f"feature {name!r} PSI {value:.2f} >= {spec.psi_alert:g}: the live distribution "
                "has moved away from training; retrain or investigate"
            )
        elif value >= spec.psi_warn:
            warnings.append(
                f"feature {name!r} PSI {value:.2f} >= {spec.psi_warn:g} (alert at "
                f"{spec.psi_alert:g}): the live distribution is drifting from training; "
                "keep watching it"
            )
    rate, n_outcomes = _latest_hit_rate(predicted, realised, spec.accuracy_window)
    if n_outcomes >= spec.min_outcomes and rate < spec.min_accuracy:
        alerts.append(
            f"hit rate {rate:.2f} over the last {n_outcomes} outcomes < {spec.min_accuracy:g}: "
            "the model's predictions have stopped working; retrain or stop trading it"
        )
    return DriftReport(
        psi=psi,
        hit_rate=rate,
        n_outcomes=n_outcomes,
        alerts=tuple(alerts),
        warnings=tuple(warnings),
    )


def _latest_hit_rate(predicted: np.ndarray, realised: np.ndarray, window: int) -> tuple[float, int]:
    """Last value of the rolling hit rate and the number of known pairs behind it.

    Any number of known pairs gives a value here (``min_pairs=1``): whether there are enough of
    them is ``DriftSpec.min_outcomes``'s call, and the report shows the count next to the rate.
    """
    series = rolling_hit_rate(predicted, realised, window, min_pairs=1)
    if series.size == 0:
        return math.nan, 0
    p = np.asarray(predicted, dtype=np.float64)
    r = np.asarray(realised, dtype=np.float64)
    n_known = int(np.count_nonzero(np.isfinite(p) & np.isfinite(r)))
    return float(series[-1]), min(n_known, window)
