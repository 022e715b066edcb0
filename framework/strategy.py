"""The one strategy interface (DESIGN.md section 3).

A strategy is a stateless object of pure functions over ``(bars, params)``. It never places orders,
reads a clock, does I/O or keeps hidden state. Write one like this::

    @dataclass(frozen=True)
    class CrossParams(Params):
        fast: int = param(10, space=range(5, 100, 5), stage="features", low=1)
        slow: int = param(50, space=range(20, 300, 10), stage="features", low=2)

        def check(self) -> None:
            if self.fast >= self.slow:
                raise ParameterError("fast must be below slow")

    class Cross(Strategy):
        name = "cross"
        params_type = CrossParams

        def warmup(self, p): return p.slow
        def features(self, bars, p): return {"fast": sma(bars.close, p.fast), ...}
        def target(self, features, p): return latch(cross_above(...), cross_below(...))

``target`` returns the desired position per bar as a fraction of equity, shaped like
``bars.close`` (``(n_bars, n_assets)``). Single-asset strategies (``universe = False``) compute
every column independently; when run on several symbols, fw splits equity equally between them.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from framework.errors import ParameterError, StrategyError, unknown_name_message
from framework.types import Bars

Stage = Literal["features", "fit", "target"]
_META_KEY = "fw_param"


@dataclass(frozen=True)
class ParamMeta:
    """What fw knows about one parameter: its search space, stage and bounds."""

    space: tuple[Any, ...] | None
    stage: Stage
    low: float | None
    high: float | None
    doc: str


def param(
    default: Any,
    *,
    space: Iterable[Any] | None = None,
    stage: Stage = "target",
    low: float | None = None,
    high: float | None = None,
    doc: str = "",
) -> Any:
    """Declare a strategy parameter inside a ``Params`` dataclass.

    Parameters
    ----------
    default : Any
        The value used when nothing else is given.
    space : iterable, optional
        The values a search may try (a grid); ``None`` means not searched.
    stage : {"features", "fit", "target"}
        Which function the parameter affects; searches recompute features only for changes in
        ``"features"`` parameters, and refit learned strategies only for changes in
        ``"features"`` or ``"fit"`` parameters (``fit`` must not read ``"target"`` ones).
    low, high : float, optional
        Inclusive bounds enforced on every value, including overrides.
    doc : str
        One line shown by ``--help`` style listings.
    """
    if stage not in ("features", "fit", "target"):
        raise StrategyError(f"param stage must be 'features', 'fit' or 'target'; got {stage!r}.")
    meta = ParamMeta(tuple(space) if space is not None else None, stage, low, high, doc)
    return field(default=default, metadata={_META_KEY: meta})


@dataclass(frozen=True)
class Params:
    """Base class of strategy parameters: subclass it as a frozen dataclass using :func:`param`.

    Override :meth:`check` for constraints between fields (raise ``ParameterError``).
    """

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check_value(type(self), f, getattr(self, f.name))
        self.check()

    def check(self) -> None:
        """Raise ``ParameterError`` when the combination of values is invalid."""

    @classmethod
    def meta(cls) -> dict[str, ParamMeta]:
        """Parameter name -> :class:`ParamMeta`, in declaration order."""
        out = {}
        for f in dataclasses.fields(cls):
            out[f.name] = f.metadata.get(_META_KEY, ParamMeta(None, "target", None, None, ""))
        return out

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> Params:
        """A copy with some values changed, validated like any other construction."""
        unknown = [k for k in changes if k not in self.meta()]
        if unknown:
            raise ParameterError(unknown_name_message("parameter", unknown[0], self.meta()))
        return dataclasses.replace(self, **changes)


def _check_value(cls: type, f: dataclasses.Field, value: Any) -> None:
    meta: ParamMeta | None = f.metadata.get(_META_KEY)
    default = f.default
    if isinstance(default, bool) and not isinstance(value, bool | np.bool_):
        raise ParameterError(f"{cls.__name__}.{f.name} must be true/false; got {value!r}.")
    if (isinstance(default, int) and not isinstance(default, bool)) and (
        isinstance(value, bool) or not isinstance(value, int | np.integer)
    ):
        raise ParameterError(f"{cls.__name__}.{f.name} must be an integer; got {value!r}.")
    if isinstance(default, float) and (
        isinstance(value, bool) or not isinstance(value, int | float | np.number)
    ):
        raise ParameterError(f"{cls.__name__}.{f.name} must be a number; got {value!r}.")
    if meta is None:
        return
    if meta.low is not None and value < meta.low:
        raise ParameterError(
            f"{cls.__name__}.{f.name} = {value!r} is below its minimum {meta.low}; "
            f"choose a value >= {meta.low}."
        )
    if meta.high is not None and value > meta.high:
        raise ParameterError(
            f"{cls.__name__}.{f.name} = {value!r} is above its maximum {meta.high}; "
            f"choose a value <= {meta.high}."
        )


class Strategy:
    """Base class of every strategy. Subclasses set the class attributes and override methods.

    Attributes
    ----------
    name : str
        Registry name (``fw backtest NAME``).
    params_type : type[Params]
        The frozen ``Params`` dataclass of this strategy.
    universe : bool
        False: a single-asset rule applied to each symbol independently (equity split equally).
        True: ``target`` returns portfolio weights across all symbols.
    """

    name: ClassVar[str] = ""
    params_type: ClassVar[type[Params]] = Params
    universe: ClassVar[bool] = False

    def default_params(self) -> Params:
        return self.params_type()

    def warmup(self, p: Params) -> int:
        """Bars needed before targets are meaningful; earlier targets are forced to 0."""
        return 0

    def features(self, bars: Bars, p: Params) -> dict[str, np.ndarray]:
        """Causal feature columns: the value at row ``i`` may use bars ``<= i`` only."""
        raise NotImplementedError(f"{type(self).__name__} must implement features(bars, p)")

    def target(self, features: Mapping[str, np.ndarray], p: Params) -> np.ndarray:
        """Desired position per bar as a fraction of equity, shape ``(n_bars, n_assets)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement target(features, p)")

    # Optional: ``fit(self, bars, p) -> model`` learns from in-sample bars (walk-forward calls it
    # per fold, live loads the latest from the model registry). ``bars`` starts ``warmup(p)`` bars
    # before the first bar to learn from, so features are settled there; ``fit`` may read
    # parameters of the "features" and "fit" stages only. Strategies that define it take
    # ``target(features, p, model)``.
    fit: ClassVar[Callable[..., Any] | None] = None

    # Optional speed-up for parameter searches of single-asset strategies:
    # ``feature_grid(self, bars, params_list) -> dict[str, ndarray]`` returns, for one-asset
    # ``bars``, each feature stacked as ``(n_bars, len(params_list))`` with column ``c`` equal to
    # ``features(bars, params_list[c])[name]`` (computing each distinct input once, e.g. one
    # moving average per window). Define it only if ``target`` treats columns independently and
    # reads target-stage parameters only: the walk-forward search then calls ``target`` once on
    # the stacked columns of combinations sharing their target-stage values. Results are
    # identical to the one-combination-at-a-time path, which is used when this is ``None``.
    feature_grid: ClassVar[Callable[..., Any] | None] = None

    def describe(self) -> str:
        """First paragraph of the class docstring."""
        doc = (type(self).__doc__ or "").strip()
        return doc.split("\n\n")[0].replace("\n", " ") if doc else self.name


def compute_features(strategy: Strategy, bars: Bars, p: Params) -> dict[str, np.ndarray]:
    """Call ``strategy.features`` and check its output is a dict of arrays with one row per bar."""
    feats = strategy.features(bars, p)
    if not isinstance(feats, Mapping):
        raise StrategyError(
            f"{strategy.name}.features must return a dict of arrays; got {type(feats).__name__}."
        )
    for key, value in feats.items():
        arr = np.asarray(value)
        if arr.shape[:1] != (bars.n_bars,):
            raise StrategyError(
                f"{strategy.name}.features[{key!r}] has shape {arr.shape}; expected "
                f"{bars.n_bars} rows (one per bar)."
            )
    return dict(feats)


def target_matrix(strategy: Strategy, raw: object, bars: Bars) -> np.ndarray:
    """``raw`` as a float64 ``(n_bars, n_assets)`` array, or a ``StrategyError`` naming the shape."""
    target = np.asarray(raw, dtype=np.float64)
    if target.ndim == 1 and bars.n_assets == 1:
        target = target.reshape(-1, 1)
    expected = (bars.n_bars, bars.n_assets)
    if target.shape != expected:
        raise StrategyError(
            f"{strategy.name}.target returned shape {target.shape}; expected {expected} "
            "(bars x assets)."
        )
    return target


def finalize_target(strategy: Strategy, raw: np.ndarray, bars: Bars, p: Params) -> np.ndarray:
    """Validate a raw target, apply warm-up zeros and equal split for single-asset strategies."""
    target = target_matrix(strategy, raw, bars)
    if np.isinf(target).any():
        raise StrategyError(f"{strategy.name}.target returned an infinite weight.")
    target = target.copy()
    warm = int(strategy.warmup(p))
    if warm < 0:
        raise StrategyError(f"{strategy.name}.warmup returned {warm}; it must be >= 0.")
    target[: min(warm, len(target))] = 0.0
    # A symbol that has not traded yet cannot be held: its weight is 0, not a guess.
    target[np.isnan(bars.close)] = 0.0
    if not strategy.universe and bars.n_assets > 1:
        target /= bars.n_assets
    return target


def raw_target(strategy: Strategy, feats: Mapping[str, np.ndarray], p: Params, model: Any = None) -> Any:
    """Call ``strategy.target``; learned strategies (with ``fit``) also receive their model."""
    if strategy.fit is None:
        return strategy.target(feats, p)
    return strategy.target(feats, p, model)


def compute_target(strategy: Strategy, bars: Bars, p: Params, model: Any = None) -> np.ndarray:
    """Features, target and (if defined) the ``step_nb`` state machine: the vectorized path.

    ``model`` is the output of ``strategy.fit`` on in-sample bars, for learned strategies.
    """
    feats = compute_features(strategy, bars, p)
    raw = target_matrix(strategy, raw_target(strategy, feats, p, model), bars)
    step = getattr(strategy, "step_nb", None)
    if step is not None:
        from framework._steps_nb import run_steps_nb  # numba compile only for stepped strategies

        raw = run_steps_nb(step, np.ascontiguousarray(raw), initial_step_state(strategy, p, raw.shape[1]))
    return finalize_target(strategy, raw, bars, p)


def initial_step_state(strategy: Strategy, p: Params, n_assets: int) -> np.ndarray:
    """Zeroed state for ``step_nb`` of the size the strategy declares (empty when none)."""
    size_fn = getattr(strategy, "step_state_size", None)
    if getattr(strategy, "step_nb", None) is None or size_fn is None:
        return np.zeros(0)
    return np.zeros(int(size_fn(p, n_assets)))


def parse_overrides(params_type: type[Params], pairs: Sequence[str]) -> dict[str, Any]:
    """Turn ``["fast=10", "slow=60"]`` into typed values, rejecting unknown names."""
    meta = params_type.meta()
    defaults = {f.name: f.default for f in dataclasses.fields(params_type)}
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ParameterError(f"--set expects name=value; got {pair!r} (e.g. --set fast=10).")
        key, raw = (s.strip() for s in pair.split("=", 1))
        if key not in meta:
            raise ParameterError(unknown_name_message("parameter", key, meta))
        out[key] = _coerce(key, raw, defaults[key])
    return out


def _coerce(key: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1", "yes")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        kind = type(default).__name__
        raise ParameterError(
            f"parameter {key!r} expects a {kind} (default {default!r}); got {raw!r}."
        ) from None
    return raw


def make_params(params_type: type[Params], values: Mapping[str, Any]) -> Params:
    """Build validated params from defaults plus ``values`` (unknown names raise)."""
    meta = params_type.meta()
    for key in values:
        if key not in meta:
            raise ParameterError(unknown_name_message("parameter", key, meta))
    return params_type(**values)


def param_grid(params_type: type[Params], base: Params | None = None) -> list[Params]:
    """Every valid combination of the declared search spaces (invalid ones are skipped).

    Parameters without a space keep their value from ``base`` (or the default).
    """
    base = base or params_type()
    names = [k for k, m in params_type.meta().items() if m.space]
    spaces = [params_type.meta()[k].space for k in names]
    grid = []
    for combo in itertools.product(*spaces):
        try:
            grid.append(base.replace(**dict(zip(names, combo, strict=True))))
        except ParameterError:
            continue
    return grid
