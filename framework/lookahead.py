"""Look-ahead checks: prove that a strategy's decisions use only the past.

Four checks, run by ``fw check STRATEGY`` on real data and by the property tests on generated data:

1. **prefix invariance**: features and targets on ``bars[:k]`` equal the first ``k`` rows on
   ``bars``;
2. **future blindness**: perturbing every bar after ``k`` changes no feature or target up to ``k``;
3. **live = vectorized**: the :class:`~framework.stepper.Stepper`, fed bar by bar, returns the
   vectorized targets;
4. **warm-up sensitivity**: targets after the warm-up do not depend on how much earlier history
   was given (a feature that drifts by float rounding only is tolerated up to ``rtol``).

A finding names the check, the feature (or ``target``), the bar and the size of the difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from framework.stepper import ScheduleEntry, Stepper
from framework.strategy import Params, Strategy, compute_features, compute_target
from framework.types import FIELDS, Bars


@dataclass(frozen=True)
class CheckSpec:
    """How hard to look: cut points, stepper span, warm-up offsets and tolerances."""

    n_cuts: int = 8
    stepper_bars: int = 120
    warmup_offsets: tuple[int, ...] = (1, 17, 101)
    rtol: float = 1e-9
    atol: float = 1e-12
    seed: int = 0


@dataclass(frozen=True)
class Finding:
    """One difference that reveals look-ahead (or a stepper/vectorized mismatch)."""

    check: str
    item: str
    bar: int
    time: str
    expected: float
    got: float

    @property
    def difference(self) -> float:
        if np.isnan(self.expected) != np.isnan(self.got):
            return float("inf")
        return float(abs(self.expected - self.got))

    def describe(self) -> str:
        return (
            f"[{self.check}] {self.item} at bar {self.bar} ({self.time}): expected "
            f"{self.expected!r}, got {self.got!r} (difference {self.difference:.3g})"
        )


@dataclass(frozen=True)
class CheckReport:
    """Outcome of all checks for one strategy and parameter set."""

    strategy: str
    params: dict
    checks: dict[str, bool] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.findings

    def format(self) -> str:
        lines = [f"look-ahead check of {self.strategy} with {self.params}"]
        for name, passed in self.checks.items():
            lines.append(f"  {'PASS' if passed else 'FAIL'}  {name}")
        lines.extend("  " + f.describe() for f in self.findings)
        return "\n".join(lines)


def check_strategy(
    strategy: Strategy, bars: Bars, params: Params | None = None, spec: CheckSpec | None = None,
    model: Any = None,
) -> CheckReport:
    """Run the four look-ahead checks; return a report (``report.ok`` when clean).

    A learned strategy (with ``fit``) is checked with ``model``, or, when none is given, with a
    model fitted on the first half of ``bars``: the checks are about its decisions given a
    model, and a fit on the past is what a walk-forward fold or paper trading would hold.
    """
    params = params or strategy.default_params()
    spec = spec or CheckSpec()
    if strategy.fit is not None and model is None:
        model = strategy.fit(bars.iloc(slice(0, bars.n_bars // 2)), params)
    full_feats = compute_features(strategy, bars, params)
    full_target = compute_target(strategy, bars, params, model)
    cuts = _cut_points(bars.n_bars, int(strategy.warmup(params)), spec.n_cuts)
    runs = {
        "prefix invariance": lambda: _prefix(strategy, bars, params, full_feats, full_target, cuts, spec, model),
        "future blindness": lambda: _future(strategy, bars, params, full_feats, full_target, cuts, spec, model),
        "live stepper = vectorized": lambda: _stepper(strategy, bars, params, full_target, spec, model),
        "warm-up sensitivity": lambda: _warmup(strategy, bars, params, full_target, spec, model),
    }
    checks: dict[str, bool] = {}
    findings: list[Finding] = []
    for name, run in runs.items():
        found = run()
        checks[name] = not found
        findings.extend(found)
    return CheckReport(strategy.name, params.as_dict(), checks, tuple(findings))


def _cut_points(n: int, warmup: int, count: int) -> list[int]:
    """Cut lengths spread over the series, including some inside the warm-up."""
    if n < 3:
        return []
    early = [k for k in (2, 5, max(warmup // 2, 3), warmup, warmup + 1) if 1 < k < n]
    spread = np.linspace(max(warmup + 2, 3), n - 1, num=max(count, 1)).astype(int).tolist()
    return sorted(set(early + [k for k in spread if 1 < k < n]))


def _first_difference(
    check: str, item: str, expected: np.ndarray, got: np.ndarray, bars: Bars, spec: CheckSpec,
    row_offset: int = 0,
) -> Finding | None:
    exp = np.asarray(expected, dtype=np.float64).reshape(len(expected), -1)
    act = np.asarray(got, dtype=np.float64).reshape(len(got), -1)
    same_nan = np.isnan(exp) == np.isnan(act)
    close = np.isclose(exp, act, rtol=spec.rtol, atol=spec.atol) | (np.isnan(exp) & np.isnan(act))
    bad = ~(same_nan & close)
    if not bad.any():
        return None
    row, col = (int(v) for v in np.argwhere(bad)[0])
    bar = row + row_offset
    return Finding(check, item, bar, bars.index[bar].isoformat(), float(exp[row, col]), float(act[row, col]))


def _compare_all(check, full_feats, full_target, feats, target, rows, bars, spec, offset=0):
    found = []
    for name, values in feats.items():
        if name not in full_feats:
            continue
        hit = _first_difference(check, f"feature {name!r}", full_feats[name][offset:offset + rows],
                                np.asarray(values)[:rows], bars, spec, offset)
        if hit:
            found.append(hit)
    hit = _first_difference(check, "target", full_target[offset:offset + rows], target[:rows], bars, spec, offset)
    if hit:
        found.append(hit)
    return found


def _prefix(strategy, bars, params, full_feats, full_target, cuts, spec, model) -> list[Finding]:
    for k in cuts:
        part = bars.iloc(slice(0, k))
        found = _compare_all("prefix invariance", full_feats, full_target,
                             compute_features(strategy, part, params),
                             compute_target(strategy, part, params, model), k, bars, spec)
        if found:
            return found
    return []


def perturb_after(bars: Bars, k: int, seed: int = 0) -> Bars:
    """A copy of ``bars`` whose bars after row ``k`` are randomly rescaled (still valid OHLC)."""
    rng = np.random.default_rng(seed)
    arrays = {name: getattr(bars, name).copy() for name in FIELDS}
    tail = slice(k + 1, bars.n_bars)
    count = bars.n_bars - (k + 1)
    if count > 0:
        scale = np.exp(rng.normal(0.0, 0.05, size=(count, bars.n_assets)))
        for name in ("open", "high", "low", "close"):
            arrays[name][tail] *= scale
        arrays["volume"][tail] *= np.exp(rng.normal(0.0, 0.3, size=(count, bars.n_assets)))
    return Bars(index=bars.index, symbols=bars.symbols, info=bars.info, **arrays)


def _future(strategy, bars, params, full_feats, full_target, cuts, spec, model) -> list[Finding]:
    for n, k in enumerate(cuts):
        changed = perturb_after(bars, k - 1, seed=spec.seed + n)
        found = _compare_all("future blindness", full_feats, full_target,
                             compute_features(strategy, changed, params),
                             compute_target(strategy, changed, params, model), k, bars, spec)
        if found:
            return found
    return []


def _stepper(strategy, bars, params, full_target, spec, model) -> list[Finding]:
    steps = min(spec.stepper_bars, bars.n_bars)
    start = bars.n_bars - steps
    schedule = [ScheduleEntry(bars.index[0], params, model)]
    stepper = Stepper(strategy, schedule, bars.symbols, history=bars.iloc(slice(0, start)))
    live = stepper.update_bars(bars.iloc(slice(start, bars.n_bars)))
    hit = _first_difference("live stepper = vectorized", "target", full_target[start:], live, bars, spec, start)
    return [hit] if hit else []


def _warmup(strategy, bars, params, full_target, spec, model) -> list[Finding]:
    warm = int(strategy.warmup(params))
    for offset in spec.warmup_offsets:
        if offset + warm >= bars.n_bars:
            continue
        late = compute_target(strategy, bars.iloc(slice(offset, bars.n_bars)), params, model)
        hit = _first_difference("warm-up sensitivity", "target", full_target[offset + warm:],
                                late[warm:], bars, spec, offset + warm)
        if hit:
            return [hit]
    return []
