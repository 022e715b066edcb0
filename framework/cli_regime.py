"""The ``fw regime`` command: current market regime, its history and a shaded price plot.

The composition root wires it with ``main.add_command(regime)``. Every fw error becomes a one-line
message and exit status 1 (``click.ClickException``), never a traceback.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from framework.errors import FwError


def _default_out(symbol: str) -> Path:
    from framework.paths import home_subdir

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return home_subdir("regimes") / f"{stamp}-{symbol}"


@click.command("regime")
@click.option(
    "--symbols",
    "-s",
    "symbol",
    default=None,
    help="Symbol to classify. Default: SPY with --data-dir, else the embedded GSPC.",
)
@click.option(
    "--vix",
    default=None,
    help="Volatility-index symbol (default: VIX when the data has it, else realized "
    "volatility stands in).",
)
@click.option("--no-vix", is_flag=True, help="Ignore any VIX; realized volatility stands in.")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of SYMBOL.csv[.gz] files. Default: the store, else embedded data.",
)
@click.option(
    "--start",
    default=None,
    help="First date of the report (ISO); history before it still warms the indicators up.",
)
@click.option("--end", default=None, help="Last date of the report (ISO, inclusive).")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Regime thresholds YAML. Default: config/regimes.yaml.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for regimes.png, regimes.csv and regime_run.json. "
    "Default: FW_HOME/regimes/<time>-<symbol>.",
)
def regime(symbol, vix, no_vix, data_dir, start, end, config_path, out) -> None:
    """Classify a market into BULL / BEAR / CHOPPY / VOLATILE regimes (causal rules).

    Prints the current regime, the history of changes and the time spent in each regime, and
    writes a log-scale price plot shaded by regime. Without --data-dir it uses the embedded
    S&P 500 index (GSPC) with the embedded VIX (2014-2019; realized volatility stands in before).

    \b
    Examples:
      fw regime
      fw regime --symbols SPY --vix VIX --data-dir ../shared/data/daily --start 2007-01-01
    """
    try:
        _run(symbol, vix, no_vix, data_dir, start, end, config_path, out)
    except FwError as exc:
        raise click.ClickException(str(exc)) from exc


def _run(symbol, vix, no_vix, data_dir, start, end, config_path, out) -> None:
    from framework.portfolio import git_revision
    from framework.regime.command import RegimeRunSpec, format_report, run_regime, write_outputs
    from framework.regime.spec import load_regime_spec

    if no_vix and vix is not None:
        raise click.UsageError(f"--vix {vix} and --no-vix contradict each other; drop one.")
    if symbol is not None and "," in symbol:
        raise click.UsageError(
            f"fw regime classifies one symbol at a time; got --symbols {symbol!r}. "
            "Run it once per symbol."
        )
    spec = load_regime_spec(config_path)
    run = RegimeRunSpec(
        symbol=symbol, vix=vix, use_vix=not no_vix, data_dir=data_dir, start=start, end=end
    )
    report = run_regime(run, spec)
    click.echo(format_report(report))
    folder = out if out is not None else _default_out(report.symbol)
    written = write_outputs(report, spec, run, folder, {"git_revision": git_revision()})
    click.echo(f"wrote {', '.join(str(p) for p in written)}")
