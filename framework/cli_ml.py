"""``fw ml``: train learned strategies into the model registry, retrain them, list versions.

``fw ml train STRATEGY`` fits the strategy on the chosen bars and saves the model with its card
(training window, features, hyper-parameters, purged-validation and in-sample metrics, data hash,
git revision, drift baseline) under ``FW_HOME/models``. The first version of a strategy becomes
its production model (what ``fw paper`` loads); later ones only with ``--promote``, or as the
``--challenger`` that paper trading runs in shadow. ``fw ml retrain`` repeats the production
model's configuration on the most recent bars. The composition root adds the commands that read
paper-trading records (``compare``, ``drift``) and wires strategy resolution in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from framework.errors import DataError, FwError, StrategyError
from framework.strategy import Params, Strategy, compute_features

DEFAULT_RETRAIN_BARS = 756  # three years of daily bars: the walk-forward default training window


def train_model(strategy: Strategy, bars, params: Params, registry=None, role: str | None = None,
                notes: str = "") -> Any:
    """Fit ``strategy`` on ``bars`` and save the model to the registry; returns its card.

    Parameters
    ----------
    strategy : Strategy
        A learned strategy (with ``fit``).
    bars : Bars
        Training bars; the first ``warmup(params)`` only settle the features.
    params : Params
    registry : ModelRegistry, optional
        Default: the registry under ``FW_HOME/models``.
    role : {"production", "challenger"}, optional
        Role to give the new version; the first version of a strategy is made production.
    notes : str
        Free text stored in the card.
    """
    from framework.ml.drift import FeatureBaseline
    from framework.ml.registry import ModelRegistry
    from framework.portfolio import git_revision

    if strategy.fit is None:
        raise StrategyError(
            f"{strategy.name} does not learn (it defines no fit); only learned strategies such as "
            "ml_classifier have models to train."
        )
    warm = int(strategy.warmup(params))
    if bars.n_bars <= warm + 100:
        raise DataError(
            f"{bars.n_bars} bars cannot train {strategy.name}: it needs {warm} warm-up bars plus "
            "at least 100 to learn from; load a longer history (--start earlier)."
        )
    registry = registry or ModelRegistry()
    model = strategy.fit(bars, params)
    names = tuple(getattr(model, "feature_names", ()))
    feats = compute_features(strategy, bars, params)
    baseline = (FeatureBaseline.fit({n: feats[n][warm:].reshape(-1) for n in names if n in feats})
                if names else None)
    window = getattr(model, "window", None) or (bars.index[warm].isoformat(), bars.index[-1].isoformat())
    describe = model.describe() if hasattr(model, "describe") else {}
    card = registry.save(strategy.name, model, {
        "train_start": window[0],
        "train_end": window[1],
        "n_samples": int(getattr(model, "n_samples", bars.n_bars - warm)),
        "features": names,
        "params": params.as_dict(),
        "hyperparameters": describe.get("hyperparameters", {}),
        "metrics": {"validation": describe.get("validation", {}), "in_sample": describe.get("in_sample", {}),
                    "importance": describe.get("importance")},
        "data_hash": bars.content_hash(),
        "git_revision": git_revision(),
        "baseline": baseline.to_dict() if baseline is not None else {},
        "notes": notes or f"symbols: {','.join(bars.symbols)}",
    })
    if role is not None:
        registry.promote(strategy.name, card.version, role)
    elif registry.role(strategy.name, "production") is None:
        registry.promote(strategy.name, card.version, "production")
    return card


def card_lines(card, roles: Mapping[str, str | None]) -> list[str]:
    """A model card as printable lines."""
    validation = card.metrics.get("validation", {}).get("overall", {})
    in_sample = card.metrics.get("in_sample", {})
    held = [r for r, v in roles.items() if v == card.version]
    return [
        f"{card.strategy} {card.version}{' (' + ', '.join(held) + ')' if held else ''}",
        f"  trained {card.created_at} on {card.train_start} .. {card.train_end} "
        f"({card.n_samples} samples; {card.notes})",
        f"  purged validation: accuracy {_num(validation.get('accuracy'))}, AUC "
        f"{_num(validation.get('auc'))}, log loss {_num(validation.get('log_loss'))} "
        f"(base rate {_num(validation.get('base_rate'))})",
        f"  in sample:         accuracy {_num(in_sample.get('accuracy'))}, AUC {_num(in_sample.get('auc'))}",
        f"  hyper-parameters: {card.hyperparameters}",
        f"  data hash {card.data_hash[:12]}, git {card.git_revision or 'n/a'}",
    ]


def _num(value: Any) -> str:
    return "n/a" if not isinstance(value, int | float) or value != value else f"{value:.3f}"


# -- click ----------------------------------------------------------------------------------------
def make_ml_group(resolve: Callable[[str], Strategy],
                  live_accuracy: Callable[[str, str], list[str]] | None = None) -> click.Group:
    """The ``fw ml`` group; ``resolve`` turns a STRATEGY argument into a strategy object and
    ``live_accuracy(strategy, version)`` (optional) adds paper-trading accuracy to ``status``."""

    @click.group("ml")
    def ml() -> None:
        """Learned strategies: train, retrain, inspect and compare models.

        \b
        fw ml train ml_classifier --symbols SPY --data-dir ../shared/data/daily
        fw ml status ml_classifier
        fw ml retrain ml_classifier --promote
        fw paper ml_classifier --challenger v0002     # shadow predictions next to production
        fw ml compare v0001 v0002                     # hit rate and P&L-if-traded of each
        fw ml drift                                   # feature PSI and live accuracy
        """

    @ml.command("train")
    @click.argument("strategy", default="ml_classifier")
    @_data_options
    @click.option("--promote", "role", flag_value="production", default=None,
                  help="Make the new version the production model (the first version always is).")
    @click.option("--challenger", "role", flag_value="challenger",
                  help="Make the new version the challenger (shadowed in paper trading).")
    def train(strategy, symbols, data_dir, start, end, sets, role) -> None:
        """Fit STRATEGY on the chosen bars and save the model to FW_HOME/models.

        The model learns from every bar given (after the warm-up): judge it with
        `fw backtest STRATEGY --walk-forward` (out-of-sample per fold), not by its card's
        in-sample numbers.
        """
        _guard(lambda: _train(resolve(strategy), symbols, data_dir, start, end, sets, role))

    @ml.command("retrain")
    @click.argument("strategy", default="ml_classifier")
    @_data_options
    @click.option("--bars", "n_bars", type=click.IntRange(100, None), default=DEFAULT_RETRAIN_BARS,
                  show_default=True, help="Most recent bars to learn from (plus the warm-up).")
    @click.option("--promote", "role", flag_value="production", default=None,
                  help="Make the new version the production model.")
    @click.option("--challenger", "role", flag_value="challenger",
                  help="Make the new version the challenger.")
    def retrain(strategy, symbols, data_dir, start, end, sets, n_bars, role) -> None:
        """Refit STRATEGY with the production model's parameters on the most recent bars."""
        _guard(lambda: _retrain(resolve(strategy), symbols, data_dir, start, end, sets, n_bars, role))

    @ml.command("status")
    @click.argument("strategy", default="ml_classifier")
    def status(strategy) -> None:
        """Versions of STRATEGY's model: window, validation metrics, roles, live accuracy."""
        _guard(lambda: _status(strategy, live_accuracy))

    @ml.command("promote")
    @click.argument("version")
    @click.option("--strategy", default="ml_classifier", show_default=True)
    @click.option("--role", type=click.Choice(["production", "challenger"]), default="production",
                  show_default=True)
    def promote(version, strategy, role) -> None:
        """Give VERSION a role: production (what fw paper trades) or challenger (shadowed)."""
        from framework.ml.registry import ModelRegistry

        _guard(lambda: _promote(ModelRegistry(), strategy, version, role))

    return ml


def _promote(registry, strategy: str, version: str, role: str) -> None:
    """Give ``version`` its role; a challenger promoted to production stops shadowing itself."""
    card = registry.promote(strategy, version, role)
    click.echo(f"{strategy} {card.version} is now the {role} model")
    if role == "production" and registry.role(strategy, "challenger") == card.version:
        registry.clear_role(strategy, "challenger")
        click.echo(f"{card.version} is no longer the challenger (it would shadow itself); "
                   "`fw ml promote VERSION --role challenger` names a new one.")


def _data_options(fn):
    for option in reversed([
        click.option("--symbols", "-s", multiple=True, help="Symbols to learn from (comma-separated)."),
        click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
                     help="Folder of SYMBOL.csv[.gz] files (default: the bar store / embedded data)."),
        click.option("--start", default=None, help="First bar (YYYY-MM-DD)."),
        click.option("--end", default=None, help="Last bar (YYYY-MM-DD)."),
        click.option("--set", "sets", multiple=True, metavar="NAME=VALUE",
                     help="Strategy parameter override (repeatable)."),
    ]):
        fn = option(fn)
    return fn


def _guard(action: Callable[[], Any]) -> None:
    try:
        action()
    except FwError as exc:
        raise click.ClickException(str(exc)) from exc


def _symbols(values: Sequence[str]) -> list[str] | None:
    out = [s.strip() for v in values for s in v.split(",") if s.strip()]
    return out or None


def _train(strategy, symbols, data_dir, start, end, sets, role) -> None:
    from framework.clirun import load_run_bars, resolve_params

    bars = load_run_bars(_symbols(symbols), data_dir, start, end)
    params = resolve_params(strategy, sets)
    click.echo(f"training {strategy.name} on {', '.join(bars.symbols)}: {bars.n_bars} bars "
               f"{bars.index[0].date()} .. {bars.index[-1].date()}")
    _print_card(strategy.name, train_model(strategy, bars, params, role=role))


def _retrain(strategy, symbols, data_dir, start, end, sets, n_bars, role) -> None:
    from framework.clirun import load_run_bars
    from framework.ml.registry import ModelRegistry
    from framework.strategy import make_params, parse_overrides

    _, card = ModelRegistry().load(strategy.name)
    values = {**card.params, **parse_overrides(strategy.params_type, sets)}
    params = make_params(strategy.params_type, values)
    wanted = _symbols(symbols) or _card_symbols(card)
    bars = load_run_bars(wanted, data_dir, start, end)
    first = max(0, bars.n_bars - n_bars - int(strategy.warmup(params)))
    bars = bars.iloc(slice(first, bars.n_bars))
    click.echo(f"retraining {strategy.name} ({card.version}'s parameters) on {', '.join(bars.symbols)}: "
               f"{bars.n_bars} bars {bars.index[0].date()} .. {bars.index[-1].date()}")
    new = train_model(strategy, bars, params, role=role, notes=f"symbols: {','.join(bars.symbols)}; "
                      f"retrained from {card.version}")
    _print_card(strategy.name, new)


def _card_symbols(card) -> list[str] | None:
    notes = card.notes or ""
    if notes.startswith("symbols: "):
        return [s for s in notes[len("symbols: "):].split(";")[0].split(",") if s]
    return None


def _status(strategy: str, live_accuracy) -> None:
    from framework.ml.registry import ModelRegistry

    registry = ModelRegistry()
    cards = registry.versions(strategy)
    if not cards:
        raise DataError(f"no models of {strategy} in {registry.root}; train one with `fw ml train {strategy}`.")
    roles = {r: registry.role(strategy, r) for r in ("production", "challenger")}
    for card in cards:
        for line in card_lines(card, roles):
            click.echo(line)
        if live_accuracy is not None:
            for line in live_accuracy(strategy, card.version):
                click.echo("  " + line)


def _print_card(name: str, card) -> None:
    from framework.ml.registry import ModelRegistry

    registry = ModelRegistry()
    roles = {r: registry.role(name, r) for r in ("production", "challenger")}
    for line in card_lines(card, roles):
        click.echo(line)
    click.echo(f"saved in {registry.root}")
