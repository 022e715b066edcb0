"""``fw ml compare`` and ``fw ml drift``: what a paper run's stored predictions say.

Added to the ``fw ml`` group by the composition root; imports beyond click happen inside the
commands, so ``fw --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from framework.errors import FwError

_DB_HELP = "State database URL (default: FW_DB_URL, else sqlite under FW_HOME/state/fw.sqlite)."


def add_live_ml_commands(group: click.Group, resolve: Callable[[str], object]) -> None:
    """Register ``compare`` and ``drift`` on ``group``; ``resolve`` turns a name into a strategy."""

    @group.command("compare")
    @click.argument("version_a")
    @click.argument("version_b")
    @click.option("--run-id", default=None, help="Paper run (default: the latest run).")
    @click.option("--db", default=None, help=_DB_HELP)
    def compare(version_a, version_b, run_id, db) -> None:
        """A/B: hit rate and P&L-if-traded of two model versions' predictions in a paper run.

        Run the challenger in shadow first: fw paper ml_classifier --challenger VERSION_B.
        """
        _guard(lambda: _compare(resolve, [version_a, version_b], run_id, db))

    @group.command("drift")
    @click.option("--run-id", default=None, help="Paper run (default: the latest run).")
    @click.option("--db", default=None, help=_DB_HELP)
    @click.option("--window", type=click.IntRange(10, None), default=252, show_default=True,
                  help="Most recent bars whose feature distribution is compared with training.")
    def drift(run_id, db, window) -> None:
        """Feature drift (PSI vs the model's training data) and the live hit rate of a run.

        Exit status 1 when a drift alert is raised (for scripts and monitors).
        """
        _guard(lambda: _drift(resolve, run_id, db, window))


def _guard(action) -> None:
    try:
        action()
    except FwError as exc:
        raise click.ClickException(str(exc)) from exc


def _open(resolve, run_id, db):
    from framework.errors import DataError
    from framework.strategy import make_params
    from live.record import latest_run_id
    from live.state import Store

    store = Store(db)
    run_id = run_id or latest_run_id(store)
    run = store.run(run_id)
    if run is None:
        raise DataError(f"no paper run {run_id!r} in {store.url}.")
    strategy = resolve(run["strategy"])
    if getattr(strategy, "fit", None) is None or "model_version" not in run["config"]:
        raise DataError(f"run {run_id!r} trades {run['strategy']}, which has no model; "
                        "fw ml compare/drift read runs of learned strategies (fw paper ml_classifier).")
    params = make_params(strategy.params_type, dict(run["config"].get("params") or {}))
    return store, run, strategy, params


def _compare(resolve, versions, run_id, db) -> None:
    from live.ml_watch import compare_versions, score_lines

    store, run, strategy, params = _open(resolve, run_id, db)
    click.echo(f"run {run['run_id']} ({run['strategy']}): live {run['config'].get('model_version')}, "
               f"shadow {run['config'].get('challenger') or 'none'}")
    for line in score_lines(compare_versions(store, run["run_id"], strategy, params, versions)):
        click.echo(line)


def _drift(resolve, run_id, db, window) -> None:
    import pandas as pd

    from framework.ml.drift import FeatureBaseline
    from framework.ml.registry import ModelRegistry
    from framework.stepper import ScheduleEntry
    from framework.strategy import compute_features
    from live.ml_watch import ModelWatch, WatchSpec

    store, run, strategy, params = _open(resolve, run_id, db)
    version = run["config"]["model_version"]
    model, card = ModelRegistry().load(strategy.name, version)
    bars = store.load_bars(run["run_id"], run["symbols"])
    features = compute_features(strategy, bars, params)
    baseline = FeatureBaseline.from_dict(card.baseline) if card.baseline else None
    if baseline is None:
        raise FwError(f"model {version} has no training baseline in its card; retrain it with fw ml train.")
    stored = store.predictions(run["run_id"])
    since = pd.Timestamp(stored["bar_time"].min()) if not stored.empty else None
    watch = ModelWatch(strategy, store, run["run_id"], version, {}, baseline,
                       spec=WatchSpec(window=window), since=since)
    report = watch.assess(bars, features, ScheduleEntry(bars.index[0], params, model))
    click.echo(f"run {run['run_id']}: model {version}, last {min(window, bars.n_bars)} bars of "
               f"{bars.n_bars}")
    for line in report.lines():
        click.echo(line)
    if report.alerts:
        raise SystemExit(1)
