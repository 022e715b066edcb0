"""The walk-forward parameter schedule as JSON (``schedule.json``) and back.

Format::

    {"strategy": "sma_cross", "params_type": "SmaCrossParams",
     "entries": [{"fold": 0, "effective_from": "2002-01-02T21:00:00+00:00",
                  "params": {"fast": 10, "slow": 50, "short": false}}, ...]}

``effective_from`` is the close time of the fold's first test bar: the params are in force from
that bar on (the :class:`~framework.stepper.Stepper` convention). Fitted models of learned
strategies are not stored; refit them on each fold's training window to reproduce the run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from framework.errors import ConfigError, FwError
from framework.portfolio import write_json
from framework.stepper import ScheduleEntry
from framework.strategy import Params, make_params


def schedule_payload(strategy_name: str, entries: Sequence[ScheduleEntry]) -> dict[str, Any]:
    """The JSON-ready dict of a schedule."""
    params_type = type(entries[0].params).__name__ if entries else ""
    return {
        "strategy": strategy_name,
        "params_type": params_type,
        "entries": [
            {
                "fold": i,
                "effective_from": e.effective_from.isoformat(),
                "params": e.params.as_dict(),
            }
            for i, e in enumerate(entries)
        ],
    }


def write_schedule(path: Path, strategy_name: str, entries: Sequence[ScheduleEntry]) -> Path:
    """Write ``schedule.json``; returns its path."""
    write_json(path, schedule_payload(strategy_name, entries))
    return path


def load_schedule(
    source: Path | str | Mapping[str, Any], params_type: type[Params]
) -> list[ScheduleEntry]:
    """Read a schedule written by :func:`write_schedule` into entries a ``Stepper`` accepts.

    Parameters
    ----------
    source : path or mapping
        The ``schedule.json`` file, or its already-parsed content.
    params_type : type of Params
        The strategy's parameter class; every entry is validated through it.

    Raises
    ------
    ConfigError
        When the file is unreadable or malformed (names the entry and what is wrong).
    """
    if isinstance(source, Mapping):
        payload, where = source, "schedule"
    else:
        where = str(source)
        try:
            payload = json.loads(Path(source).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read schedule {where}: {exc}.") from exc
    entries = payload.get("entries") if isinstance(payload, Mapping) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(
            f"{where} has no 'entries' list; expected the schedule.json a walk-forward run writes."
        )
    out = []
    for i, item in enumerate(entries):
        try:
            when = pd.Timestamp(item["effective_from"])
            params = make_params(params_type, dict(item["params"]))
        except (KeyError, TypeError, ValueError) as exc:
            kind = "invalid parameters" if isinstance(exc, FwError) else "a malformed entry"
            raise ConfigError(
                f"{where} entry {i} has {kind} ({exc}); each entry needs 'effective_from' (ISO "
                f"time) and 'params' valid for {params_type.__name__}."
            ) from exc
        when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
        out.append(ScheduleEntry(when, params))
    return out
