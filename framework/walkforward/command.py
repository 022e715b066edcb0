"""``fw backtest --walk-forward``: run the walk-forward and write its files.

Writes the standard single-run files of the stitched out-of-sample backtest (``summary.json``
with the walk-forward statistics added, ``equity.csv``, ``trades.csv``, ``run.json``, the tear
sheet), plus ``folds.csv`` (one row per fold) and ``schedule.json`` (the parameter schedule, which
:func:`framework.walkforward.schedule.load_schedule` turns back into ``Stepper`` entries).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from framework.backtest import BacktestSpec
from framework.errors import FwError
from framework.portfolio import BacktestResult, Benchmark
from framework.strategy import Params
from framework.types import Bars
from framework.walkforward.run import WalkForwardResult, WalkForwardSpec, walk_forward
from framework.walkforward.schedule import write_schedule
from framework.walkforward.search import SearchSpec
from framework.walkforward.splits import WindowSpec

WalkForwardReportWriter = Callable[[WalkForwardResult, Path], Path]
OutputsWriter = Callable[..., dict]

# CLI option name -> (spec, field); the click layer calls the test length "test_len".
_WINDOW_KEYS = {
    "train": "train",
    "test_len": "test",
    "test": "test",
    "step": "step",
    "anchored": "anchored",
    "purge": "purge",
    "embargo": "embargo",
}
_SEARCH_KEYS = {
    "search": "method",
    "trials": "trials",
    "objective": "objective",
    "seed": "seed",
    "min_trades": "min_trades",
}


def spec_from_options(options: Mapping[str, Any]) -> WalkForwardSpec:
    """Build a :class:`WalkForwardSpec` from ``BacktestRequest.wf_options`` (CLI values).

    Unset (``None``) values keep their defaults; unknown keys are ignored so the CLI may carry
    options for other layers.
    """
    window = {_WINDOW_KEYS[k]: v for k, v in options.items() if k in _WINDOW_KEYS and v is not None}
    search = {_SEARCH_KEYS[k]: v for k, v in options.items() if k in _SEARCH_KEYS and v is not None}
    extra: dict[str, Any] = {}
    if options.get("executor") is not None:
        extra["executor"] = options["executor"]
    if options.get("workers") is not None:
        extra["workers"] = options["workers"]
    if options.get("address") is not None:
        extra["address"] = options["address"]
    return WalkForwardSpec(windows=WindowSpec(**window), search=SearchSpec(**search), **extra)


def run_walk_forward_command(
    request: Any,
    bars: Bars,
    params: Params,
    spec: BacktestSpec,
    benchmark: Benchmark | None,
    write_tearsheet: Callable[..., Path] | None,
    write_walkforward_report: WalkForwardReportWriter | None = None,
    *,
    write_outputs: OutputsWriter | None = None,
    write_model_report: WalkForwardReportWriter | None = None,
) -> BacktestResult:
    """Run the walk-forward of a ``BacktestRequest`` and write every output file.

    Parameters
    ----------
    request : BacktestRequest
        The parsed command (strategy, output folder, ``wf_options``).
    bars : Bars
        All loaded bars.
    params : Params
        Base parameters (``--set`` values fix parameters without a search space).
    spec : BacktestSpec
        Engine and costs.
    benchmark : Benchmark or None
        Buy-and-hold comparison aligned to ``bars.index``.
    write_tearsheet : callable or None
        The tear sheet writer ``write_outputs`` uses.
    write_walkforward_report : callable, optional
        ``f(wf_result, path) -> Path`` writing ``walkforward.html``.
    write_model_report : callable, optional
        ``f(wf_result, path) -> Path`` writing ``model.html`` (learned strategies only).
    write_outputs : callable
        ``framework.clirun.write_outputs``, which writes the single-run files; passed in because
        the walk-forward layer sits below ``clirun`` and may not import it.

    Returns
    -------
    BacktestResult
        The stitched out-of-sample backtest.
    """
    if write_outputs is None:
        raise FwError(
            "run_walk_forward_command needs write_outputs=framework.clirun.write_outputs (the "
            "function that writes summary.json, equity.csv, trades.csv, run.json)."
        )
    wf_spec = spec_from_options(request.wf_options)
    wf = walk_forward(request.strategy, bars, params, wf_spec, spec, benchmark)
    out = Path(request.out)
    extra_info = {
        "command": "backtest --walk-forward",
        "walk_forward": {
            "windows": wf_spec.windows.describe(),
            "search": wf_spec.search.method,
            "trials": wf_spec.search.trials,
            "seed": wf_spec.search.seed,
            "objective": wf_spec.search.objective.name,
            "min_trades": wf_spec.search.min_trades,
            "executor": wf_spec.executor,
            "address": wf_spec.address,
            **wf.statistics,
            "notes": list(wf.notes),
        },
    }
    if wf.model_evaluation is not None:
        extra_info["model_evaluation"] = wf.model_evaluation.to_dict()
    paths = write_outputs(request, wf.backtest, wf.bars, spec, write_tearsheet, extra_info)
    out.mkdir(parents=True, exist_ok=True)
    wf.folds.to_csv(out / "folds.csv", index=False)
    paths["folds"] = out / "folds.csv"
    paths["schedule"] = write_schedule(out / "schedule.json", request.strategy.name, wf.schedule)
    if wf.model_evaluation is not None:
        wf.model_evaluation.folds.to_csv(out / "model_folds.csv", index=False)
        paths["model_folds"] = out / "model_folds.csv"
    if write_walkforward_report is not None:
        paths["walkforward"] = write_walkforward_report(wf, out / "walkforward.html")
    if write_model_report is not None and wf.model_evaluation is not None:
        paths["model_report"] = write_model_report(wf, out / "model.html")
    _print_statistics(wf, paths)
    return wf.backtest


def _print_statistics(wf: WalkForwardResult, paths: Mapping[str, Path]) -> None:
    from rich.console import Console

    s = wf.statistics
    console = Console()
    console.print(
        f"walk-forward: {s['n_folds']} folds, {s['n_trials']} trials; efficiency "
        f"{_num(s['walk_forward_efficiency'])}, deflated Sharpe {_num(s['deflated_sharpe'])}, "
        f"PBO {_num(s['pbo'])}"
    )
    for note in wf.notes:
        console.print(f"[yellow]note:[/] {note}")
    if wf.model_evaluation is not None:
        o = wf.model_evaluation.overall
        console.print(
            f"models ({wf.model_evaluation.model_kind}), out of sample: accuracy "
            f"{_num(o['accuracy'])} vs base rate {_num(o['base_rate'])}, AUC {_num(o['auc'])}, "
            f"log loss {_num(o['log_loss'])} over {o['n']} predictions"
        )
    for name in ("folds", "schedule", "walkforward", "model_folds", "model_report"):
        if name in paths:
            console.print(f"{name:>10}: {paths[name]}")


def _num(value: float) -> str:
    return "n/a" if value != value else f"{value:.2f}"
