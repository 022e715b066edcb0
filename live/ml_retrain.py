"""Scheduled retraining of a learned strategy inside a paper run (``fw paper --retrain weekly``).

Before the first bar of a new week (or month) is decided, the model is refitted on the most
recent ``bars`` closed bars (plus the strategy's warm-up), which all precede that bar: the
decision of the new bar is the first to use the new model, so nothing it learns comes from the
bar it decides. The new version is saved in the registry, logged in the run's config
(``model_schedule``: the version and the bar it trades from) so a restart, ``fw parity`` and
the journal rebuild exactly which model decided each bar, and announced as an event and alert.
A retrain that fails (e.g. too few labels) is recorded as an error and the old model keeps
trading.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from framework.errors import FwError, ParameterError, unknown_name_message
from framework.stepper import ScheduleEntry
from framework.types import Bars

RETRAIN_EVERY: tuple[str, ...] = ("never", "weekly", "monthly")
# "from the start" for a run's first model (Timestamp.min breaks searchsorted on ns indexes)
EARLIEST = pd.Timestamp("1900-01-01", tz="UTC")


@dataclass(frozen=True)
class RetrainSpec:
    """When and on how much history a paper run refits its model."""

    every: str = "never"
    bars: int = 756

    def __post_init__(self) -> None:
        if self.every not in RETRAIN_EVERY:
            raise ParameterError(unknown_name_message("retrain schedule", self.every, RETRAIN_EVERY))
        if self.bars < 100:
            raise ParameterError(f"retrain bars must be >= 100; got {self.bars}.")

    @property
    def enabled(self) -> bool:
        return self.every != "never"


def period_key(when: pd.Timestamp, every: str) -> tuple[int, int]:
    """The calendar period of a bar close (New York dates): ISO week or month."""
    day = pd.Timestamp(when).tz_convert("America/New_York")
    if every == "weekly":
        iso = day.isocalendar()
        return (int(iso[0]), int(iso[1]))
    return (day.year, day.month)


def due(spec: RetrainSpec, previous: pd.Timestamp | None, when: pd.Timestamp,
        schedule: tuple[ScheduleEntry, ...]) -> bool:
    """Whether bar ``when`` opens a new period since ``previous`` and has no model from it yet
    (a bar retried after a crash finds its retrain already logged)."""
    if not spec.enabled or previous is None:
        return False
    if schedule and schedule[-1].effective_from >= when:
        return False
    return period_key(previous, spec.every) != period_key(when, spec.every)


def retrain(strategy, history: Bars, params, spec: RetrainSpec, registry, run_id: str):
    """Fit on the trailing window of ``history`` and save it; returns ``(model, card)``."""
    from framework.cli_ml import train_model

    warm = int(strategy.warmup(params))
    window = history.iloc(slice(max(0, history.n_bars - spec.bars - warm), history.n_bars))
    card = train_model(strategy, window, params, registry=registry, role=None,
                       notes=f"symbols: {','.join(history.symbols)}; retrained by paper run {run_id}")
    model, card = registry.load(strategy.name, card.version)
    return model, card


def record(store, run_id: str, when: pd.Timestamp, version: str) -> None:
    """Append ``version`` (trading from ``when``) to the run's ``model_schedule``."""
    run = store.run(run_id)
    config = dict(run["config"])
    config["model_schedule"] = [*config.get("model_schedule", []),
                                {"effective_from": when.isoformat(), "version": version}]
    store.update_run(run_id, config=json.dumps(config, default=str))


def model_schedule(strategy, config: Mapping[str, Any], params, registry) -> tuple[list[ScheduleEntry], Any]:
    """The run's model entries: its first model from the start, then each retrain from the bar
    it trades from. Returns ``(entries, card of the latest)``."""
    first, card = registry.load(strategy.name, config["model_version"])
    entries = [ScheduleEntry(EARLIEST, params, first)]
    for item in config.get("model_schedule", []):
        model, card = registry.load(strategy.name, item["version"])
        entries.append(ScheduleEntry(pd.Timestamp(item["effective_from"]), params, model))
    return entries, card


def before_bar(watch, runner, when: pd.Timestamp) -> None:
    """Runner hook: retrain when due and extend the stepper's schedule with the new model."""
    stepper = runner.stepper
    history = stepper.history()
    previous = history.index[-1] if history.n_bars else None
    if not due(watch.retraining, previous, when, stepper.schedule):
        return
    params = stepper.schedule[-1].params
    try:
        model, card = retrain(watch.strategy, history, params, watch.retraining, watch.registry,
                              watch.run_id)
    except FwError as exc:
        runner.store.error(watch.run_id, "scheduled retrain failed; the current model keeps trading",
                           str(exc))
        return
    record(runner.store, watch.run_id, when, card.version)
    stepper.schedule = (*stepper.schedule, ScheduleEntry(when, params, model))
    watch.switch(card)
    message = (f"model {card.version} trades from {when.isoformat()} (trained on "
               f"{card.train_start[:10]} .. {card.train_end[:10]})")
    runner.store.event(watch.run_id, "model", message)
    watch.alert("rebalance", f"{watch.strategy.name}: retrained", message, "info")
