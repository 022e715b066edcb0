"""Which trained model a paper run of a learned strategy trades, and which it shadows.

A learned strategy (one with ``fit``) trades the registry's model: ``--model VERSION``, else the
production version, else the latest (``fw ml train`` makes one). Its parameters are the ones the
model was trained with (``--set`` may change those that only shape positions, such as
``threshold``; changing what the model learned from is refused). ``--challenger VERSION`` (else
the registry's challenger, if any) predicts in shadow. A resumed run keeps its versions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from framework.errors import ConfigError
from framework.stepper import ScheduleEntry
from framework.strategy import Params, Strategy, make_params, parse_overrides


def attach_models(strategy: Strategy, spec, existing: Mapping[str, Any] | None, schedule: Any,
                  recorded: dict[str, Any], registry=None):
    """Return ``(schedule with the model(s), config to record, registry, challengers, card of
    the model in force)``.

    Raises
    ------
    ConfigError
        A walk-forward ``--schedule`` (it stores no models), a ``--set`` of a parameter the
        model learned with, or versions different from a resumed run's.
    ModelNotFoundError
        No trained model (the message says how to train one).
    """
    from framework.ml.registry import ModelRegistry

    registry = registry or ModelRegistry()
    if spec.schedule is not None:
        raise ConfigError(
            f"--schedule {spec.schedule}: walk-forward schedules do not store fitted models, so a "
            f"learned strategy ({strategy.name}) paper-trades the registry's model instead; omit "
            "--schedule (choose a version with --model)."
        )
    stored = existing["config"] if existing is not None else {}
    version = _pick(spec.model, stored.get("model_version"), "--model", existing)
    version = version or registry.resolve(strategy.name)
    model, card = registry.load(strategy.name, version)
    params = _params(strategy, card.params, spec.sets, stored.get("params") if existing else None)
    challenger = _pick(spec.challenger, stored.get("challenger"), "--challenger", existing)
    if existing is None and challenger is None:
        challenger = registry.role(strategy.name, "challenger")
    if challenger == version:
        challenger = None  # the live model is not its own challenger
    shadows = {challenger: registry.load(strategy.name, challenger)[0]} if challenger else {}
    config = {**recorded, "params": params.as_dict(), "model_version": version, "challenger": challenger,
              "retrain": stored.get("retrain") or {"every": spec.retrain, "bars": spec.retrain_bars},
              "model_schedule": stored.get("model_schedule", [])}
    if existing is None:
        from live.ml_retrain import EARLIEST

        entries = [ScheduleEntry(EARLIEST, params, model)]
    else:
        from live.ml_retrain import model_schedule

        entries, card = model_schedule(strategy, config, params, registry)  # with its retrains
    return entries, config, registry, shadows, card


def _pick(asked: str | None, stored: str | None, option: str, existing) -> str | None:
    if existing is not None and asked is not None and stored is not None and asked != stored:
        raise ConfigError(
            f"run {existing['run_id']!r} uses {option} {stored}; asked for {asked}. Resume it "
            f"without {option}, or start a new --run-id."
        )
    return asked or stored


def _params(strategy: Strategy, trained: Mapping[str, Any], sets, resumed) -> Params:
    """The card's parameters with ``--set`` overrides of target-stage ones only."""
    if resumed:
        return make_params(strategy.params_type, dict(resumed))
    values = {k: v for k, v in trained.items() if k in strategy.params_type.meta()}
    overrides = parse_overrides(strategy.params_type, sets)
    meta = strategy.params_type.meta()
    learned = [k for k, v in overrides.items() if meta[k].stage != "target" and values.get(k) != v]
    if learned:
        raise ConfigError(
            f"--set {', '.join(learned)}: the model was trained with {', '.join(f'{k}={values.get(k)!r}' for k in learned)}; "
            f"train a model with those values first (fw ml train {strategy.name} --set ...)."
        )
    return make_params(strategy.params_type, {**values, **overrides})


def make_watch(strategy: Strategy, store, run_id: str, config: Mapping[str, Any], shadows, card,
               alerter, registry):
    """The :class:`~live.ml_watch.ModelWatch` of a run (drift baseline from the model card)."""
    from framework.ml.drift import FeatureBaseline
    from live.ml_retrain import RetrainSpec
    from live.ml_watch import ModelWatch

    baseline = FeatureBaseline.from_dict(card.baseline) if card.baseline else None
    stored = store.predictions(run_id)  # a resumed run: its first traded bar
    since = pd.Timestamp(stored["bar_time"].min()) if not stored.empty else None
    retrain = config.get("retrain") or {}
    return ModelWatch(strategy, store, run_id, card.version, shadows, baseline, alerter.send,
                      since=since, registry=registry,
                      retraining=RetrainSpec(retrain.get("every", "never"), int(retrain.get("bars", 756))))
